using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Cancelling;

/// <summary>
/// Cancelling a running job through the whole pipeline, on a processor with one slot: the API stores
/// the cancel as the job's ending (202), the processor aborts the run, its batch-mates run again
/// alone, and the slot takes the next job.
/// </summary>
public sealed class CancelRunningJobTests(PipelineWithOneSlotAndFaultInjection pipeline) : IClassFixture<PipelineWithOneSlotAndFaultInjection>
{
    private const string Hang = """{"cqrsi-test-fault":"hang"}""";

    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task A_running_job_is_cancelled_its_run_aborted_within_a_second_and_its_batch_mates_succeed()
    {
        // The slot is busy, so the three queue up and run as one batch once it is free; the middle
        // one would hang for its whole timeout (25 s), holding its batch-mates, unless aborted. The
        // busy job shows running after Processor:ReportRunningAfter (1 s) and stays so 1.5 s more:
        // time for a recorder behind on a loaded machine, and for the three to queue behind it.
        var busy = await _client.SubmitAsync(Scenarios.MlpJob([0, 0, 0, 0], """{"cqrsi-test-fault":"sleep:2500"}"""));
        await _client.WaitForStatusAsync(busy.Id, "running");
        var batch = await BulkAsync([
            Scenarios.MlpJob([1, 1, 1, 1], timeout: "25s"),
            Scenarios.MlpJob([2, 2, 2, 2], Hang, timeout: "25s"),
            Scenarios.MlpJob([3, 3, 3, 3], timeout: "25s"),
        ]);
        await _client.WaitForStatusAsync(batch[1], "running");

        var requestedAt = DateTimeOffset.UtcNow;
        using var response = await _client.DeleteAsync($"/v1/jobs/{batch[1]}");

        response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        response.Headers.Location!.ToString().ShouldBe($"/v1/jobs/{batch[1]}");
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString().ShouldBe("cancelled");
        var cancelled = await _client.WaitForStatusAsync(batch[1], "cancelled", TimeSpan.FromSeconds(5));
        var first = await _client.WaitForStatusAsync(batch[0], "succeeded", TimeSpan.FromSeconds(5));
        var third = await _client.WaitForStatusAsync(batch[2], "succeeded", TimeSpan.FromSeconds(5));

        // The batch was aborted at the cancel and the mates ran again alone at once: not at the hang's timeout.
        first.GetProperty("completedAt").GetDateTimeOffset().ShouldBeLessThan(requestedAt + TimeSpan.FromSeconds(1));
        third.GetProperty("completedAt").GetDateTimeOffset().ShouldBeLessThan(requestedAt + TimeSpan.FromSeconds(1));
        new[] { first, third }.ShouldAllBe(j => j.GetProperty("attempts").GetInt32() == 1);

        // Each carries its own run alone, not the aborted attempt (over a second: the hung job read as
        // running before its cancel), which a cancel leaves to no job.
        new[] { first, third }.ShouldAllBe(j => j.GetProperty("batchSize").GetInt32() == 1 && j.GetProperty("runMs").GetDouble() < 1000);
        cancelled.GetProperty("completedAt").GetDateTimeOffset().ShouldBeLessThan(requestedAt + TimeSpan.FromSeconds(1));
        // The API reads a job it cancelled as cancelled at once; the record follows.
        await Retry.Until("the cancel to be recorded", () => EventTypesAsync(batch[1]), types => types.Count == 3);
        (await EventTypesAsync(batch[1])).ShouldBe(["v1.job_submitted", "v1.job_started", "v1.job_cancelled"]);

        // The only slot is free again: the next job runs.
        var next = await _client.SubmitAsync(Scenarios.MlpJob([4, 3, 2, 1]));
        await _client.WaitForStatusAsync(next.Id, "succeeded", TimeSpan.FromSeconds(5));
        await _client.WaitForStatusAsync(busy.Id, "succeeded");
    }

    [Fact]
    public async Task Cancelling_a_running_job_again_answers_202_a_cancelled_one_200_as_recorded_and_an_ended_job_409_naming_its_status()
    {
        var job = await _client.SubmitAsync(Scenarios.MlpJob([5, 5, 5, 5], Hang, timeout: "25s"));
        await _client.WaitForStatusAsync(job.Id, "running");

        using var first = await _client.PostAsync($"/v1/jobs/{job.Id}:cancel", null);
        using var again = await _client.DeleteAsync($"/v1/jobs/{job.Id}");

        first.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        again.StatusCode.ShouldBeOneOf(HttpStatusCode.Accepted, HttpStatusCode.OK);
        await _client.WaitForStatusAsync(job.Id, "cancelled", TimeSpan.FromSeconds(5));
        await Retry.Until("the cancel to be recorded", () => _client.RecordedCountsAsync(job.Id), counts => counts.Ended > 0);
        (await _client.RecordedCountsAsync(job.Id)).ShouldBe((1, 1));

        // Cancelled and recorded: a cancel again is 200 with the job as its cancel left it, not a new ending time.
        var recorded = (await _client.GetJobAsync(job.Id)).GetProperty("completedAt").GetDateTimeOffset();
        using var third = await _client.DeleteAsync($"/v1/jobs/{job.Id}");
        third.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await third.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("completedAt").GetDateTimeOffset().ShouldBe(recorded);
        (await _client.RecordedCountsAsync(job.Id)).ShouldBe((1, 1));

        var done = await _client.SubmitAsync(Scenarios.MlpJob([6, 6, 6, 6]));
        await _client.WaitForStatusAsync(done.Id, "succeeded");
        using var ended = await _client.DeleteAsync($"/v1/jobs/{done.Id}");
        ended.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        (await ended.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString()!.ShouldContain("succeeded");
    }

    [Fact]
    public async Task A_retry_of_a_job_cancelled_while_it_ran_runs_and_succeeds()
    {
        // The processor remembers the cancel for a minute (for a run not begun yet): it must not
        // abort the retry's run, which is the next attempt series of the same job.
        // Long enough to be seen running (from Processor:ReportRunningAfter, 1 s) on a loaded machine; the retry sleeps as long.
        var job = await _client.SubmitAsync(Scenarios.MlpJob([7, 7, 7, 7], """{"cqrsi-test-fault":"sleep:6000"}"""));
        await _client.WaitForStatusAsync(job.Id, "running");
        using (var cancel = await _client.DeleteAsync($"/v1/jobs/{job.Id}"))
        {
            cancel.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        }

        await _client.WaitForStatusAsync(job.Id, "cancelled", TimeSpan.FromSeconds(5));
        (await _client.RetryAsync(job.Id)).Status.ShouldBe(HttpStatusCode.Accepted);

        var retried = await _client.WaitForStatusAsync(job.Id, "succeeded");
        retried.GetProperty("attempts").GetInt32().ShouldBe(1);
        await Retry.Until("the retry's ending to be recorded", () => EventTypesAsync(job.Id), types => types.Count(t => t == "v1.job_succeeded") == 1);
        (await EventTypesAsync(job.Id)).Count(t => t == "v1.job_cancelled").ShouldBe(1);
    }

    [Fact]
    public async Task A_delivery_of_a_job_cancelled_while_held_by_a_processor_finds_its_claim_cancelled()
    {
        // The gate's check on every delivery: a processor's claim overwritten by a cancel makes the
        // next delivery (after a crash, or for another attempt) end cancelled instead of running.
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;
        var claims = new JobClaims(js);
        var job = Guid.NewGuid();

        (await claims.ClaimForRunAsync(job, 1, CancellationToken.None)).ShouldBe(Commands.Jobs.ClaimOutcome.Won);
        (await claims.ClaimForRunAsync(job, 1, CancellationToken.None)).ShouldBe(Commands.Jobs.ClaimOutcome.Running); // a redelivery finds its own claim
        await claims.MarkCancelledAsync(job, 1, CancellationToken.None);

        (await claims.ClaimForRunAsync(job, 1, CancellationToken.None)).ShouldBe(Commands.Jobs.ClaimOutcome.Cancelled);
    }

    private async Task<List<string?>> EventTypesAsync(Guid id) =>
        (await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}/events")).EnumerateArray().Select(e => e.GetProperty("type").GetString()).ToList();

    private async Task<List<Guid>> BulkAsync(IEnumerable<string> jobs)
    {
        using var content = new StringContent($$"""{"jobs":[{{string.Join(",", jobs)}}]}""", Encoding.UTF8, "application/json");
        using var response = await _client.PostAsync("/v1/jobs:bulk", content);
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return body.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetGuid()).ToList();
    }
}
