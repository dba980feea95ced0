using System.Net;
using CqrsInference.Commands.Jobs;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs;

/// <summary>
/// An interactive job another run claimed first ("taken") is not run again by the processor that
/// finds the claim, so whoever answers must make sure it ends: the first run's processor may have died.
/// </summary>
public sealed class InteractiveTakenTests(PipelineWithProcessorProcessesInTwoRegions pipeline) : IClassFixture<PipelineWithProcessorProcessesInTwoRegions>
{
    [Fact]
    public async Task A_job_whose_processor_died_mid_run_and_that_another_region_finds_taken_is_queued_and_ends_once()
    {
        // Local's processor claims the job and dies while it runs; the API's ask times out and goes
        // on to west, whose processor finds the claim taken. Without a queue behind "taken", the job
        // had a submission and no ending, ever, and the caller got 202 at the end of its wait.
        await using var local = await pipeline.StartProcessorAsync("taken-local");
        var key = $"taken-{Guid.NewGuid():N}";
        var id = DeterministicGuid.ForIdempotencyKey("default", key);
        var answering = pipeline.Client.InferAsync([7, 7, 7, 7], wait: "60s", metadata: """{"cqrsi-test-fault":"sleep:6000"}""", idempotencyKey: key);
        await pipeline.Client.WaitForStatusAsync(id, "running");
        await local.KillAsync();
        await using var west = await pipeline.StartProcessorAsync("taken-west", new Dictionary<string, string>
        {
            ["Processor:Region"] = PipelineWithProcessorProcessesInTwoRegions.West,
            ["Processor:Scheduling:OverflowAfter"] = "00:00:01",
        });

        var job = await answering;

        job.Status.ShouldBe(HttpStatusCode.OK, job.Body.ToString());
        job.Id.ShouldBe(id);
        job.Body.GetProperty("status").GetString().ShouldBe("succeeded");
        job.Body.GetProperty("worker").GetString().ShouldBe("taken-west");
        await Retry.Until("the job to be recorded", () => pipeline.Client.RecordedCountsAsync(id), c => c.Ended > 0);
        await Task.Delay(TimeSpan.FromSeconds(1));
        (await pipeline.Client.RecordedCountsAsync(id)).Ended.ShouldBe(1);
    }
}
