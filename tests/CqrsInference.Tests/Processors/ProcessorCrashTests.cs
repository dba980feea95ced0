using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Processors;

/// <summary>Processors as real processes: killed, terminated, and watched for how much they pull.</summary>
public sealed class ProcessorCrashTests(PipelineWithProcessorProcesses pipeline) : IClassFixture<PipelineWithProcessorProcesses>
{
    /// <summary>Every start published before its run, not only a run's that outlasts a second.</summary>
    private static readonly Dictionary<string, string> ReportEveryStart = new() { ["Processor:ReportRunningAfter"] = "00:00:00" };

    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task Every_job_succeeds_exactly_once_when_a_processor_is_killed_mid_batch()
    {
        // proc-a publishes every start before its run: its jobs show running however short its batches.
        await using var a = await pipeline.StartProcessorAsync("proc-a", ReportEveryStart);
        await using var b = await pipeline.StartProcessorAsync("proc-b");
        // Enough work that proc-a is still busy when the (sequential) look-ups below find it running.
        var jobs = await SubmitManyAsync(300, "sleep:60");

        // Kill proc-a once it is visibly in the middle of work.
        await Retry.Until(
            "proc-a to be running jobs",
            () => RunningOnAsync(jobs, "proc-a"),
            seen => seen.Running);
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
    public async Task A_processor_whose_model_cannot_load_exits_1_so_that_a_supervisor_restarts_it()
    {
        // The host stops when a processor fails; it exited 0 ("deactivated successfully"), and
        // systemd's Restart=on-failure never restarted it.
        var models = Directory.CreateTempSubdirectory("cqrsi-broken-models-");
        try
        {
            Directory.CreateDirectory(Path.Combine(models.FullName, "generated"));
            await File.WriteAllBytesAsync(Path.Combine(models.FullName, "generated", "mlp-test.onnx"), [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 7))]);
            var settings = new Dictionary<string, string>(PipelineWithFaultInjection.Topology)
            {
                ["Processor:Models:0"] = "mlp-test",
                ["Models:Directory"] = models.FullName,
            };

            var (code, output) = await ProcessorProcess.RunToExitAsync(pipeline.Nats.Url, "proc-broken", settings);

            code.ShouldBe(1, output);
            output.ShouldContain("mlp-test");
            output.ShouldNotContain("Unhandled exception.");
            output.ShouldContain("Protobuf parsing failed", customMessage: "a crash shows its exception");
        }
        finally
        {
            models.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_processor_told_to_serve_a_model_the_manifest_lacks_refuses_to_start_with_exit_78()
    {
        var settings = new Dictionary<string, string>(PipelineWithFaultInjection.Topology) { ["Processor:Models:0"] = "nope" };

        var (code, output) = await ProcessorProcess.RunToExitAsync(pipeline.Nats.Url, "proc-nope", settings);

        code.ShouldBe(78, output);
        output.ShouldContain("error: CqrsInference did not start: Processor:Models entry 'nope': the manifest has no model 'nope'");
    }

    [Fact]
    public async Task Terminated_processor_finishes_its_in_flight_jobs_before_it_exits()
    {
        // Every start published before its run (by default only a run that outlasts a second shows
        // its jobs running, and batches of jobs that trickle in on a loaded machine may all be
        // shorter), and 100 ms a job: the read model shows some job running before all are done.
        await using var processor = await pipeline.StartProcessorAsync("proc-drain", ReportEveryStart);
        var jobs = await SubmitManyAsync(60, "sleep:100");
        await Retry.Until("proc-drain to be running jobs", () => RunningOnAsync(jobs, "proc-drain"), seen => seen.Running);

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

    /// <summary>Whether the read model shows one of <paramref name="jobs"/> running on <paramref name="worker"/>; else what it shows of them.</summary>
    private async Task<Seen> RunningOnAsync(IEnumerable<Guid> jobs, string worker)
    {
        var seen = new Dictionary<string, int>();
        foreach (var id in jobs.Take(150))
        {
            // A job not readable yet (its provisional status is best effort under load) is not running.
            using var response = await _client.GetAsync($"/v1/jobs/{id}");
            var state = $"HTTP {(int)response.StatusCode}";
            if (response.IsSuccessStatusCode)
            {
                var job = await response.Content.ReadFromJsonAsync<JsonElement>();
                var status = job.GetProperty("status").GetString();
                var on = job.GetProperty("worker") is { ValueKind: JsonValueKind.String } w ? w.GetString() : null;
                if (status == "running" && on == worker)
                {
                    // One is enough to know: the caller acts at once, while the worker is busy.
                    return new Seen(true, $"running on {worker}");
                }

                state = on is null ? status! : $"{status} on {on}";
            }

            seen[state] = seen.GetValueOrDefault(state) + 1;
        }

        return new Seen(false, string.Join(", ", seen.Select(s => $"{s.Value} {s.Key}")));
    }

    /// <summary>What a look at the jobs found (the summary is what a timeout reports).</summary>
    private sealed record Seen(bool Running, string Summary)
    {
        public override string ToString() => Summary;
    }
}
