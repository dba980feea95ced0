using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using NATS.Client.Core;
using NATS.Net;

namespace CqrsInference.Bench;

/// <summary>
/// Issue 21's shadow acceptance: the same open-loop mlp-test load, first with no shadow run (the
/// processor loads no shadow: <c>Processor:ShadowQueue</c> 0), then with a shadow version of
/// mlp-test configured (the same network, <c>"state": "shadow"</c>), in one run and one manifest.
/// Prints the primary jobs' end-to-end p50/p99 of both runs and their ratio (the target: p99 within
/// 1.2×), and how many shadow results were published and how many jobs the shadow dropped.
/// </summary>
internal static partial class ShadowBench
{
    public static async Task<int> RunAsync(BenchSettings settings, int jobs, int rate, int rounds)
    {
        var manifest = await WriteManifestAsync(settings);
        var shadowed = settings with { Manifest = manifest };
        var duration = TimeSpan.FromSeconds((double)jobs / rate);
        var runs = new List<(ShadowRun Without, ShadowRun With)>();
        for (var round = 1; round <= rounds; round++)
        {
            // Alternated, and in turn first (ABBA), so a change in the shared machine's speed, or
            // whatever the first run after another leaves behind, falls on both sides alike.
            Console.WriteLine($"round {round} of {rounds}");
            if (round % 2 == 1)
            {
                var without = await RunOnceAsync(shadowed, "0", rate, duration);
                runs.Add((without, await RunOnceAsync(shadowed, "64", rate, duration)));
            }
            else
            {
                var with = await RunOnceAsync(shadowed, "64", rate, duration);
                runs.Add((await RunOnceAsync(shadowed, "0", rate, duration), with));
            }
        }

        Console.WriteLine();
        Console.WriteLine($"| round (open loop, {rate} jobs/s, {jobs} jobs each) | shadow | jobs/s | end to end p50 / p95 / p99 (ms) | shadow results | share of the jobs shadowed | shadow drops |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        for (var i = 0; i < runs.Count; i++)
        {
            foreach (var (name, run) in new[] { ("no", runs[i].Without), ("configured", runs[i].With) })
            {
                Console.WriteLine($"| {i + 1} | {name} | {run.Run.PerSecond:F0} | {run.Run.EndToEnd} | {run.ShadowResults} | {100.0 * run.ShadowResults / run.Run.EndToEndMs.Count:F0}% | {run.Dropped} |");
            }
        }

        Console.WriteLine();
        double Median(Func<(ShadowRun Without, ShadowRun With), double> of) => Measures.Percentile([.. runs.Select(of)], 50);
        var p50 = Median(r => Measures.Percentile(r.With.Run.EndToEndMs, 50)) / Median(r => Measures.Percentile(r.Without.Run.EndToEndMs, 50));
        var p99 = Median(r => Measures.Percentile(r.With.Run.EndToEndMs, 99)) / Median(r => Measures.Percentile(r.Without.Run.EndToEndMs, 99));
        var coverage = Measures.Percentile([.. runs.Select(r => 100.0 * r.With.ShadowResults / r.With.Run.EndToEndMs.Count)], 50);
        Console.WriteLine($"primary latency with / without shadow, medians of {rounds} alternated rounds: p50 {p50:F2}x, p99 {p99:F2}x (target p99 <= 1.2x: {(p99 <= 1.2 ? "met" : "NOT met")}), with {coverage:F0}% of the jobs shadowed (median; the shadow waits for an idle host: Processor:ShadowMinIdleCpu)");
        return 0;
    }

    private sealed record ShadowRun(LoadBench.PipelineRun Run, int ShadowResults, string Dropped);

    private static async Task<ShadowRun> RunOnceAsync(BenchSettings settings, string shadowQueue, int rate, TimeSpan duration)
    {
        await using var app = await AppProcess.StartAsync(settings, "api,processor,projections", "Serving mlp-test",
            new Dictionary<string, string> { ["Processor__Models__0"] = "mlp-test", ["Processor__ShadowQueue"] = shadowQueue });
        using var http = settings.CreateClient();
        await using var nats = new NatsClient(settings.NatsUrl);
        var watcher = new CompletionWatcher(nats, "log.*.events.*.mlp-test.*");
        await watcher.StartAsync();
        var shadowResults = 0;
        await using var shadows = await nats.Connection.SubscribeCoreAsync<byte[]>("log.*.events.*.mlp-test.*");
        using var counting = new CancellationTokenSource();
        var counter = Task.Run(async () =>
        {
            await foreach (var msg in shadows.Msgs.ReadAllAsync(counting.Token))
            {
                if (msg.Headers?["Cqrsi-Event-Type"].ToString() == "v1.job_shadow_result")
                {
                    Interlocked.Increment(ref shadowResults);
                }
            }
        });

        Console.WriteLine($"ShadowQueue={shadowQueue}: warm-up 300 jobs, then {rate} jobs/s for {duration.TotalSeconds:F0} s");
        await LoadBench.PipelineClosedLoopAsync(http, watcher, 300, 8, Measures.MlpBody, lag: null);

        // Both kinds of run start their load from the same quiet state: the read models caught up
        // with everything before it (the previous run's backlog and the warm-up's jobs).
        var caughtUp = await LoadBench.WaitForRollUpsAsync(http, TimeSpan.Zero);
        Console.WriteLine($"  read models caught up {caughtUp.TotalSeconds:F1} s after the warm-up");
        var before = Volatile.Read(ref shadowResults);
        var startedAt = DateTime.UtcNow;
        var cpu = LoadBench.CpuMeter.ForBench(app.Pid);
        var run = await LoadBench.PipelineOpenLoopAsync(http, watcher, rate, duration, Measures.MlpBody);
        Console.WriteLine($"  CPU during the load (2 cores = 200%): {cpu.Stop()}");
        PrintSlowSeconds(run, rate, startedAt);

        // Shadows run after the primary's jobs: give them a moment to finish what they hold.
        await Task.Delay(TimeSpan.FromSeconds(2));
        var dropped = await DroppedAsync(http);
        await counting.CancelAsync();
        await counter.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

        // Stopped as an operator stops it (SIGTERM), not killed: a killed process's PostgreSQL
        // sessions keep the async daemon's leadership lock until the server notices they are gone,
        // and the next run's daemon would then catch up that whole backlog in the middle of its load.
        await app.StopAsync();
        return new ShadowRun(run, Volatile.Read(ref shadowResults) - before, dropped);
    }

    /// <summary>
    /// The seconds of the load whose slowest job took over 50 ms end to end (by when each job was
    /// due), with the wall-clock time, so that a run's p99 can be laid beside the servers' logs.
    /// </summary>
    private static void PrintSlowSeconds(LoadBench.PipelineRun run, int rate, DateTime startedAt)
    {
        var seconds = run.EndToEndMs.Select((ms, i) => (Second: i / rate, Ms: ms, Submit: run.SubmitMs[i], Wait: run.QueueWaitMs[i]))
            .GroupBy(job => job.Second)
            .Where(second => second.Max(job => job.Ms) > 50)
            .Select(second =>
            {
                var worst = second.MaxBy(job => job.Ms);
                return $"{startedAt.AddSeconds(second.Key):HH:mm:ss} (+{second.Key} s): {second.Count(job => job.Ms > 50)} jobs over 50 ms, worst {worst.Ms:F0} ms (submit {worst.Submit:F0} ms, queue wait {worst.Wait:F0} ms)";
            })
            .ToList();
        Console.WriteLine(seconds.Count == 0 ? "  no second with a job over 50 ms" : "  slow seconds: " + string.Join("; ", seconds));
    }

    /// <summary>The processor's shadow drops so far (warm-up included), from /metrics.</summary>
    private static async Task<string> DroppedAsync(HttpClient http)
    {
        try
        {
            var metrics = await http.GetStringAsync("/metrics");
            var matches = DroppedRegex().Matches(metrics);
            return matches.Count == 0 ? "0" : matches.Sum(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToString(CultureInfo.InvariantCulture);
        }
        catch (HttpRequestException)
        {
            return "?";
        }
    }

    /// <summary>The bench's manifest with a shadow version of mlp-test: the same network, so every answer agrees.</summary>
    private static async Task<string> WriteManifestAsync(BenchSettings settings)
    {
        var models = JsonNode.Parse(await File.ReadAllTextAsync(settings.Manifest))!.AsArray();
        var mlp = models.Single(m => m!["name"]!.GetValue<string>() == "mlp-test")!;
        var shadow = mlp.DeepClone();
        (shadow["version"], shadow["state"]) = ("1-shadow", "shadow");
        mlp["default"] = true;
        models.Add(shadow);
        var path = Path.Combine(Environment.GetEnvironmentVariable("BENCH_DIR") ?? Path.GetTempPath(), $"shadow-manifest-{Environment.ProcessId}.json");
        await File.WriteAllTextAsync(path, models.ToJsonString());
        return path;
    }

    [GeneratedRegex(@"^cqrsi_shadow_dropped(?:_jobs)?_total(?:\{[^}]*\})? ([0-9.eE+-]+)", RegexOptions.Multiline)]
    private static partial Regex DroppedRegex();
}
