using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Lifecycle;

/// <summary>Retries of jobs that ended without running: cancelled while queued, expired in the queue.</summary>
public sealed class RetryEndedUnrunJobTests(PipelineWithoutProcessors pipeline) : IClassFixture<PipelineWithoutProcessors>
{
    [Fact]
    public async Task A_job_reads_as_cancelled_and_can_be_retried_at_once_after_its_cancel_answered()
    {
        var client = pipeline.Client;
        var job = await client.SubmitAsync(Scenarios.MlpJob([4, 4, 4, 4]));
        await Retry.Until("the job to be recorded as queued", () => client.GetJobAsync(job.Id), j => j.GetProperty("status").GetString() == "queued");

        (await client.DeleteAsync($"/v1/jobs/{job.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // Before the recorder has the cancel: the API that answered it does not contradict itself.
        (await client.GetJobAsync(job.Id)).GetProperty("status").GetString().ShouldBe("cancelled");
        var (status, retried) = await client.RetryAsync(job.Id);
        status.ShouldBe(HttpStatusCode.Accepted, retried.ToString());
        retried.GetProperty("series").GetInt32().ShouldBe(2);
        (await client.DeleteAsync($"/v1/jobs/{job.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK, "the new series is cancelled in turn");
    }

    [Fact]
    public async Task A_cancelled_job_and_an_expired_job_retried_run_in_their_second_series()
    {
        var client = pipeline.Client;
        var cancelled = await client.SubmitAsync(Scenarios.MlpJob([1, 1, 1, 1]));
        (await client.DeleteAsync($"/v1/jobs/{cancelled.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        await client.WaitForStatusAsync(cancelled.Id, "cancelled");
        var deadlineAt = DateTimeOffset.UtcNow.AddSeconds(1);
        var deadline = deadlineAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var expiring = await client.SubmitAsync(Scenarios.MlpJob([2, 2, 2, 2])[..^1] + $",\"deadline\":\"{deadline}\"}}");
        expiring.Status.ShouldBe(HttpStatusCode.Accepted);

        // The cancelled job is retried before any processor runs: its first series' message (claimed
        // by the cancel) and its second series' wait in the queue together.
        var (status, retried) = await client.RetryAsync(cancelled.Id);
        status.ShouldBe(HttpStatusCode.Accepted);
        retried.GetProperty("series").GetInt32().ShouldBe(2);

        // The other job's deadline is what the test is about: no processor may see it before then.
        await Task.Delay(TimeSpan.FromTicks(Math.Max(0, (deadlineAt - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(100)).Ticks)));
        await using var processor = new PipelineHost(pipeline.Nats.Url, pipeline.Host.Schema, "processor");
        _ = processor.Server;

        await client.WaitForStatusAsync(expiring.Id, "expired");
        (await client.RetryAsync(expiring.Id)).Status.ShouldBe(HttpStatusCode.Accepted);

        foreach (var id in new[] { cancelled.Id, expiring.Id })
        {
            var done = await client.WaitForSeriesAsync(id, 2, "succeeded");
            done.GetProperty("outputs").GetArrayLength().ShouldBe(1);
        }

        (await client.EventTypesAsync(cancelled.Id)).ShouldBe(["v1.job_submitted", "v1.job_cancelled", "v1.job_retried", "v1.job_succeeded"]);
        (await client.EventTypesAsync(expiring.Id)).ShouldBe(["v1.job_submitted", "v1.job_expired", "v1.job_retried", "v1.job_succeeded"]);
        var retriedEvent = (await client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{expiring.Id}/events"))[2].GetProperty("data");
        retriedEvent.GetProperty("deadline").ValueKind.ShouldBe(JsonValueKind.Null);
    }
}
