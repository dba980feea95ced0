using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Processors;

/// <summary>Processors as real processes: killed, terminated, and watched for how much they pull.</summary>
public sealed class ProcessorCrashTests(PipelineWithProcessorProcesses pipeline) : IClassFixture<PipelineWithProcessorProcesses>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task Every_job_succeeds_exactly_once_when_a_processor_is_killed_mid_batch()
    {
        await using var a = await pipeline.StartProcessorAsync("proc-a");
        await using var b = await pipeline.StartProcessorAsync("proc-b");
        // Enough work that proc-a is still busy when the (sequential) look-ups below find it running.
        var jobs = await SubmitManyAsync(300, "sleep:60");

        // Kill proc-a once it is visibly in the middle of work.
        await Retry.Until(
            "proc-a to be running jobs",
            async () => await CountRunningOnAsync(jobs, "proc-a"),
            running => running > 0);
        await a.KillAsync();

        var attempts = new List<int>();
        foreach (var id in jobs)
        {
            var done = await _client.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(60));
            attempts.Add(done.GetProperty("attempts").GetInt32());
            var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}/events");
            events.EnumerateArray().Count(e => e.GetProperty("type").GetString() is "v1.job_succeeded" or "v1.job_failed").ShouldBe(1);
        }

        // The jobs proc-a held when it died came back (AckWait) and ran again on proc-b.
        attempts.Count(n => n >= 2).ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task Processor_pulls_no_more_jobs_than_it_has_free_capacity()
    {
        // Start from an idle queue: jobs a processor killed by another test held come back only
        // after their AckWait, and would count as in flight here.
        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            await Retry.Until("the queue to be idle", () => JobMessages.QueuedAsync(js, "mlp-test"), q => q is { Waiting: 0, InFlight: 0 });
        }

        // One slot of mlp-test: capacity 64 (one full batch).
        await using var processor = await pipeline.StartProcessorAsync("proc-small", new Dictionary<string, string> { ["Processor:Slots"] = "1" });
        var jobs = await SubmitManyAsync(200, "sleep:20");
        (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            var samples = new List<(long Pending, long AckPending)>();
            while (samples.Count < 20)
            {
                samples.Add(await JobMessages.QueuedAsync(js, "mlp-test"));
                await Task.Delay(50);
            }

            samples.Max(s => s.AckPending).ShouldBeLessThanOrEqualTo(64);
            samples.ShouldContain(s => s.Pending > 0 && s.AckPending > 0);
        }

        foreach (var id in jobs)
        {
            await _client.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(60));
        }
    }

    [Fact]
    public async Task Terminated_processor_finishes_its_in_flight_jobs_before_it_exits()
    {
        await using var processor = await pipeline.StartProcessorAsync("proc-drain");
        var jobs = await SubmitManyAsync(60, "sleep:30");
        await Retry.Until("proc-drain to be running jobs", async () => await CountRunningOnAsync(jobs, "proc-drain"), n => n > 0);

        processor.Terminate();
        using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await processor.WaitForExitAsync(exit.Token);
        processor.ExitCode.ShouldBe(0, processor.Output);

        // What it had started, it finished: nothing it held waits for AckWait to come back. (No
        // other processor runs yet, so only proc-drain can have finished them; the wait is for the
        // recorder to catch up.)
        var started = new List<Guid>();
        foreach (var id in jobs)
        {
            var job = await _client.GetJobAsync(id);
            if (job.GetProperty("worker").ValueKind == JsonValueKind.String)
            {
                await _client.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(10));
                started.Add(id);
            }
        }

        started.ShouldNotBeEmpty();
        await using var successor = await pipeline.StartProcessorAsync("proc-next");
        foreach (var id in jobs)
        {
            (await _client.WaitForStatusAsync(id, "succeeded")).GetProperty("attempts").GetInt32().ShouldBeLessThanOrEqualTo(2);
        }
    }

    private async Task<List<Guid>> SubmitManyAsync(int count, string fault)
    {
        var submits = Enumerable.Range(0, count).Select(i =>
            _client.SubmitAsync(Scenarios.MlpJob([i % 7, 1, 2, 3], $$"""{"cqrsi-test-fault":"{{fault}}"}""")));
        var jobs = await Task.WhenAll(submits);
        jobs.ShouldAllBe(j => j.Status == System.Net.HttpStatusCode.Accepted);
        return jobs.Select(j => j.Id).ToList();
    }

    private async Task<int> CountRunningOnAsync(IEnumerable<Guid> jobs, string worker)
    {
        foreach (var id in jobs.Take(150))
        {
            // A job not readable yet (its provisional status is best effort under load) is not running.
            using var response = await _client.GetAsync($"/v1/jobs/{id}");
            if (!response.IsSuccessStatusCode)
            {
                continue;
            }

            var job = await response.Content.ReadFromJsonAsync<JsonElement>();
            if (job.GetProperty("status").GetString() == "running" && job.GetProperty("worker").GetString() == worker)
            {
                // One is enough to know: the caller acts at once, while the worker is busy.
                return 1;
            }
        }

        return 0;
    }
}
