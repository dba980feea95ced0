using System.Net;
using CqrsInference.Commands.Batches;
using CqrsInference.Tests.Fixtures;

namespace CqrsInference.Tests.Batches;

/// <summary>The batch supervisor with a page of one batch a round: every running batch still gets its turn.</summary>
public sealed class BatchSupervisorTests(PipelineSupervisingOneBatchARound pipeline) : IClassFixture<PipelineSupervisingOneBatchARound>
{
    [Fact]
    public async Task A_newer_batch_completes_while_older_ones_stay_running_beyond_one_rounds_page()
    {
        // No processor: the older batches' lines stay queued, so those batches run on. The round looked
        // at the oldest Batches:SupervisePage batches only, so the newest never completed (with 1,000,
        // a tenant's 1,000 running batches held up every newer batch of every tenant).
        var client = pipeline.Client;
        for (var i = 0; i < 2; i++)
        {
            (await client.SubmitBatchAsync(BatchScenarios.File([BatchScenarios.Line(i)]))).Status.ShouldBe(HttpStatusCode.Accepted);
        }

        var newest = await client.SubmitBatchAsync(BatchScenarios.File([BatchScenarios.Line(1), BatchScenarios.Line(2)]));
        newest.Status.ShouldBe(HttpStatusCode.Accepted);
        await client.WaitForBatchAsync(newest.Id, b => b.Count("queued") == 2, "to have its jobs queued");
        foreach (var line in new[] { 1, 2 })
        {
            using var cancelled = await client.DeleteAsync($"/v1/jobs/{BatchJobs.JobId(newest.Id, line)}");
            cancelled.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        var batch = await client.WaitForBatchAsync(newest.Id, b => b.GetProperty("status").GetString() == "completed", "to be completed by a later round");
        batch.Count("cancelled").ShouldBe(2);
    }
}
