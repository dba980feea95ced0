using System.Net;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs;

/// <summary>
/// The interactive path (NATS request/reply to the processors) against real processor processes:
/// served at once when a processor is there, queued when none is, and never lost or recorded twice
/// when the processor dies in the middle of the run.
/// </summary>
public sealed class InteractivePathTests(PipelineWithProcessorProcesses pipeline) : IClassFixture<PipelineWithProcessorProcesses>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task A_processor_of_the_jobs_region_serves_it_at_once_and_it_is_recorded_exactly_once()
    {
        await using var processor = await pipeline.StartProcessorAsync("interactive-a");

        var job = await _client.InferAsync([1, 2, 3, 4]);

        job.Status.ShouldBe(HttpStatusCode.OK, job.Body.ToString());
        job.Body.GetProperty("servedBy").GetString().ShouldBe("interactive", job.Body.ToString());
        job.Body.GetProperty("status").GetString().ShouldBe("succeeded");
        job.Body.GetProperty("ranInRegion").GetString().ShouldBe("local");
        job.Body.GetProperty("worker").GetString().ShouldBe("interactive-a");
        job.Body.GetProperty("outputs").EnumerateArray().ShouldNotBeEmpty();
        (await _client.GetJobAsync(job.Id)).GetProperty("status").GetString().ShouldBe("succeeded", "read as it was answered, recorded or not");
        await Retry.Until("the job to be recorded", () => _client.RecordedCountsAsync(job.Id), c => c.Ended > 0);
        await Task.Delay(TimeSpan.FromSeconds(1));
        (await _client.RecordedCountsAsync(job.Id)).ShouldBe((1, 1));
    }

    [Fact]
    public async Task A_retried_interactive_submit_is_answered_with_the_same_finished_job_not_after_its_whole_wait()
    {
        await using var processor = await pipeline.StartProcessorAsync("interactive-retried");
        var key = $"retried-{Guid.NewGuid():N}";
        var first = await _client.InferAsync([5, 5, 5, 5], idempotencyKey: key);

        // At once, before the recorder may have recorded it: its ending is on the log already.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var again = await _client.InferAsync([5, 5, 5, 5], wait: "30s", idempotencyKey: key);

        again.Status.ShouldBe(HttpStatusCode.OK, again.Body.ToString());
        again.Id.ShouldBe(first.Id);
        again.Body.GetProperty("status").GetString().ShouldBe("succeeded");
        watch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(20), "answered from what is stored, not after the whole wait");
        await Retry.Until("the job to be recorded", () => _client.RecordedCountsAsync(first.Id), c => c.Ended > 0);
        (await _client.RecordedCountsAsync(first.Id)).ShouldBe((1, 1));
    }

    [Fact]
    public async Task Requests_retried_with_one_key_while_the_job_runs_run_the_model_once()
    {
        // Each retry used to run the model again (its claim found 'running' and ran, as a queue's
        // redelivery does), billed once: the log kept one ending.
        var processor = await pipeline.StartProcessorAsync("interactive-once");
        var key = $"once-{Guid.NewGuid():N}";
        // All at once: one request's run claims the job, the others reach a processor while it runs
        // (not yet recorded, so not answered from the record) and find the claim taken.
        var answers = (await Task.WhenAll(Enumerable.Range(0, 6).Select(_ =>
            _client.InferAsync([6, 6, 6, 6], metadata: """{"cqrsi-test-fault":"sleep:800"}""", idempotencyKey: key)))).ToList();

        answers.ShouldAllBe(a => a.Status == HttpStatusCode.OK && a.Id == answers[0].Id, string.Join("\n", answers.Select(a => a.Body.ToString())));
        answers.ShouldAllBe(a => a.Body.GetProperty("status").GetString() == "succeeded");
        processor.Terminate();
        await processor.WaitForExitAsync(CancellationToken.None);
        processor.Output.ShouldContain("Worker for mlp-test stopped after 1 jobs", Case.Sensitive, processor.Output);
        await processor.DisposeAsync();
        (await _client.RecordedCountsAsync(answers[0].Id)).ShouldBe((1, 1));
    }

    [Fact]
    public async Task With_no_processor_anywhere_it_is_queued_and_answered_when_one_starts_within_the_wait()
    {
        var answering = _client.InferAsync([2, 2, 2, 2], wait: "60s");
        await Task.Delay(TimeSpan.FromSeconds(1));
        answering.IsCompleted.ShouldBeFalse("nobody could have run it yet");

        await using var processor = await pipeline.StartProcessorAsync("interactive-late");
        var job = await answering;

        job.Status.ShouldBe(HttpStatusCode.OK, job.Body.ToString());
        job.Body.GetProperty("servedBy").GetString().ShouldBe("queue");
        job.Body.GetProperty("status").GetString().ShouldBe("succeeded");
        await Retry.Until("the job to be recorded", () => _client.RecordedCountsAsync(job.Id), c => c.Ended > 0);
        (await _client.RecordedCountsAsync(job.Id)).ShouldBe((1, 1));
    }

    [Fact]
    public async Task A_processor_killed_while_running_an_interactive_job_leaves_it_answered_and_ended_exactly_once()
    {
        await using var a = await pipeline.StartProcessorAsync("interactive-killed");
        var key = $"killed-{Guid.NewGuid():N}";
        var id = DeterministicGuid.ForIdempotencyKey("default", key);
        var answering = _client.InferAsync([3, 3, 3, 3], wait: "60s", metadata: """{"cqrsi-test-fault":"sleep:4000"}""", idempotencyKey: key);

        // A run that outlasts a second says so: the job reads running on the processor about to die.
        var running = await _client.WaitForStatusAsync(id, "running");
        running.GetProperty("worker").GetString().ShouldBe("interactive-killed");
        await a.KillAsync();
        await using var b = await pipeline.StartProcessorAsync("interactive-survivor");
        var job = await answering;

        job.Status.ShouldBe(HttpStatusCode.OK, job.Body.ToString());
        job.Id.ShouldBe(id);
        job.Body.GetProperty("status").GetString().ShouldBe("succeeded");
        job.Body.GetProperty("servedBy").GetString().ShouldBe("queue", "the killed processor never answered: the job was queued");
        job.Body.GetProperty("worker").GetString().ShouldBe("interactive-survivor");
        await Task.Delay(TimeSpan.FromSeconds(1));
        var counts = await _client.RecordedCountsAsync(id);
        counts.Ended.ShouldBe(1);
        counts.Submitted.ShouldBe(1, "the queued submission of a job already submitted is dropped");
    }
}
