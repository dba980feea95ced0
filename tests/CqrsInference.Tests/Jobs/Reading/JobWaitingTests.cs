using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Api.Jobs.Waiting;
using CqrsInference.Projections.Analytics;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Reading;

/// <summary>"Why is it waiting": GET /v1/jobs/{id} of a queued job says where it stands and whether anything serves it.</summary>
public sealed class JobWaitingTests(PipelineWithoutProcessors idle, PipelineWithOneSlotAndFaultInjection served)
    : IClassFixture<PipelineWithoutProcessors>, IClassFixture<PipelineWithOneSlotAndFaultInjection>
{
    [Fact]
    public async Task A_queued_job_with_no_processor_serving_its_model_says_so()
    {
        var job = await idle.Client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));

        var waiting = (await idle.Client.GetJobAsync(job.Id)).GetProperty("waiting");

        waiting.GetProperty("served").GetBoolean().ShouldBeFalse();
        waiting.GetProperty("processorsInRegion").GetInt32().ShouldBe(0);
        waiting.GetProperty("processorsElsewhere").GetInt32().ShouldBe(0);
        waiting.GetProperty("position").GetInt64().ShouldBeGreaterThanOrEqualTo(1);
        waiting.GetProperty("queued").GetInt64().ShouldBeGreaterThanOrEqualTo(1);
        waiting.GetProperty("estimatedStartAt").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task A_queued_job_behind_a_busy_processor_shows_its_place_and_an_estimated_start_and_an_ended_job_no_waiting()
    {
        // The slot is busy and the processor holds what it may (a full batch): the rest waits in the queue.
        // Busy for 10 s: under the whole suite's load, 3 s were sometimes over before a poll read the
        // last job as queued (it was seen succeeded, and the test timed out).
        var client = served.Client;
        var busy = await client.SubmitAsync(Scenarios.MlpJob([0, 0, 0, 0], """{"cqrsi-test-fault":"sleep:10000"}"""));
        await client.WaitForStatusAsync(busy.Id, "running");
        var jobs = await BulkAsync(client, Enumerable.Range(1, 100).Select(i => Scenarios.MlpJob([i, i, i, i])));

        var job = await Retry.Until("the last job to show its place in its queue", () => client.GetJobAsync(jobs[^1]),
            j => j.TryGetProperty("waiting", out var w) && w.GetProperty("position").GetInt64() >= 1);
        var waiting = job.GetProperty("waiting");

        // The jobs of one bulk arrived at one instant: their places come from their sequences in the
        // queue, not their arrival times (which read every one of them as next, position 1).
        waiting.GetProperty("position").GetInt64().ShouldBe(waiting.GetProperty("queued").GetInt64(), "the last of the bulk is last in its queue");
        // 39 of the bulk were queued after this one (0 once the queue has gone past it).
        var middle = await client.GetJobAsync(jobs[^40]);
        if (middle.TryGetProperty("waiting", out var atMiddle))
        {
            atMiddle.GetProperty("position").GetInt64().ShouldBe(Math.Max(0, atMiddle.GetProperty("queued").GetInt64() - 39));
        }

        job.GetProperty("status").GetString().ShouldBe("queued");
        waiting.GetProperty("served").GetBoolean().ShouldBeTrue();
        waiting.GetProperty("processorsInRegion").GetInt32().ShouldBe(1);
        waiting.GetProperty("position").GetInt64().ShouldBeLessThanOrEqualTo(waiting.GetProperty("queued").GetInt64());
        waiting.GetProperty("inFlight").GetInt64().ShouldBeGreaterThanOrEqualTo(1);
        waiting.GetProperty("positionEstimated").GetBoolean().ShouldBeTrue();
        waiting.GetProperty("ratePerSecond").GetDouble().ShouldBeGreaterThan(0);
        waiting.GetProperty("estimatedStartAt").GetDateTimeOffset().ShouldBeGreaterThan(job.GetProperty("submittedAt").GetDateTimeOffset());

        (await client.WaitForStatusAsync(jobs[^1], "succeeded")).TryGetProperty("waiting", out _).ShouldBeFalse();
    }

    [Fact]
    public async Task A_cancelled_job_leaves_its_queue_so_the_jobs_behind_it_move_up()
    {
        // No processor serves the model here: a cancelled job stayed in its queue, counted as waiting
        // (and ahead of every job behind it) until a processor pulled it, which here was never.
        using var client = await idle.TenantClientAsync("withdrawn", "submit", "read");
        var jobs = await BulkAsync(client, Enumerable.Range(1, 3).Select(i => Scenarios.MlpJob([i, i, i, i])));
        var last = await Retry.Until("the last job to show the three jobs of its queue", () => client.GetJobAsync(jobs[^1]),
            j => j.GetProperty("waiting").GetProperty("queued").GetInt64() == 3);
        last.GetProperty("waiting").GetProperty("position").GetInt64().ShouldBe(3);

        foreach (var id in jobs[..2])
        {
            using var cancelled = await client.DeleteAsync($"/v1/jobs/{id}");
            cancelled.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
        }

        // What a queue holds is read at most every QueueWaits.Fresh (2 s).
        var waiting = (await Retry.Until("the cancelled jobs to be no longer waiting", () => client.GetJobAsync(jobs[^1]),
            j => j.GetProperty("waiting").GetProperty("queued").GetInt64() == 1, TimeSpan.FromSeconds(10))).GetProperty("waiting");
        waiting.GetProperty("position").GetInt64().ShouldBe(1);
    }

    private static async Task<List<Guid>> BulkAsync(HttpClient client, IEnumerable<string> jobs)
    {
        using var content = new StringContent($$"""{"jobs":[{{string.Join(",", jobs)}}]}""", System.Text.Encoding.UTF8, "application/json");
        using var response = await client.PostAsync("/v1/jobs:bulk", content);
        response.StatusCode.ShouldBe(System.Net.HttpStatusCode.Accepted);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return body.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetGuid()).ToList();
    }

    [Fact]
    public void The_position_comes_from_the_jobs_sequence_among_the_queues_waiting_jobs()
    {
        var now = DateTimeOffset.Parse("2025-01-01T00:01:40Z", System.Globalization.CultureInfo.InvariantCulture);
        var queue = new QueueSnapshot(Queued: 100, InFlight: 2, OldestAt: now.AddSeconds(-100), RatePerSecond: 10, DeliveredSequence: 1_000, LastSequence: 1_200);
        ProcessorStatus[] online = [new(Guid.NewGuid(), "w", "local", "cpu", 1, true, now, now, Models: ["mlp-test"])];
        long At(ulong? sequence) => WaitingEstimate.Of(queue, online, "local", "mlp-test", submittedAt: now, now, sequence).Position;

        At(1_100).ShouldBe(50);
        At(1_001).ShouldBe(1);
        At(1_200).ShouldBe(100);
        At(1_300).ShouldBe(100, "queued after the queue was read: last");
        At(1_000).ShouldBe(0, "delivered: a processor holds it");
        At(400).ShouldBe(0);

        // Its sequence unknown: by its arrival time (submitted now: last).
        At(null).ShouldBe(100);
    }

    [Fact]
    public void The_position_is_estimated_from_arrivals_between_the_oldest_waiting_job_and_now()
    {
        var now = DateTimeOffset.Parse("2025-01-01T00:01:40Z", System.Globalization.CultureInfo.InvariantCulture);
        var queue = new QueueSnapshot(Queued: 100, InFlight: 2, OldestAt: now.AddSeconds(-100), RatePerSecond: 10);
        ProcessorStatus[] online = [new(Guid.NewGuid(), "w", "local", "cpu", 1, true, now, now, Models: ["mlp-test"])];

        var waiting = WaitingEstimate.Of(queue, online, "local", "mlp-test", submittedAt: now.AddSeconds(-50), now);

        waiting.Position.ShouldBe(50);
        waiting.EstimatedStartAt.ShouldBe(now.AddSeconds(4.9));
        WaitingEstimate.Of(queue, online, "local", "other-model", now.AddSeconds(-50), now).Served.ShouldBeFalse();
        WaitingEstimate.Of(queue, online, "eu", "mlp-test", now.AddSeconds(-50), now).ProcessorsElsewhere.ShouldBe(1);
        WaitingEstimate.Of(queue with { Queued = 0 }, online, "local", "mlp-test", now, now).Position.ShouldBe(0);
    }
}
