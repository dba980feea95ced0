using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using NATS.Net;

namespace CqrsInference.Bench;

/// <summary>
/// Two regions, east and west, each with two processors of one slot whose inference takes a fixed
/// simulated time; both carry a steady baseline load, then east gets a burst of ten times its
/// baseline. Run once with overflow off and once on, on the same servers, and compare east's queue
/// wait, west's own jobs' queue wait, and how idle west's processors were while east was behind.
/// Jobs are published straight onto the queues (the API's own queue code), so the figures are the
/// scheduling's, not the HTTP front's.
/// </summary>
internal static class OverflowBench
{
    private const int ProcessorsPerRegion = 2;
    private const int SlotsPerProcessor = 2;

    public static async Task<int> RunAsync(BenchSettings settings, int inferenceMs, int baselinePerSecond, int burstSeconds)
    {
        await using var nats = new NatsClient(settings.NatsUrl);
        var js = nats.CreateJetStreamContext();
        var topology = new TopologyOptions();
        await new NatsTopology(js, topology).EnsureAsync(CancellationToken.None);
        var queue = new NatsJobQueue(js, new JobQueues(js, topology));

        var capacity = ProcessorsPerRegion * SlotsPerProcessor * 1000.0 / inferenceMs;
        Console.WriteLine($"simulated inference {inferenceMs} ms; per region {ProcessorsPerRegion} processors × {SlotsPerProcessor} slots = {capacity:F0} jobs/s"
            + " (one remote job at a time per processor);"
            + $" baseline {baselinePerSecond} jobs/s per region ({100 * baselinePerSecond / capacity:F0}% busy); east bursts to {10 * baselinePerSecond} jobs/s for {burstSeconds} s");

        var results = new Dictionary<bool, RunResult>();
        foreach (var overflow in new[] { false, true })
        {
            Console.WriteLine($"run: overflow {(overflow ? "on" : "off")}");
            results[overflow] = await RunOnceAsync(settings, nats, queue, overflow, inferenceMs, baselinePerSecond, burstSeconds);
        }

        var (off, on) = (results[false], results[true]);
        Console.WriteLine();
        Console.WriteLine("| metric | overflow off | overflow on | on / off |");
        Console.WriteLine("|---|---|---|---|");
        Row("east (bursting) queue wait p50", Measures.Percentile(off.East, 50), Measures.Percentile(on.East, 50), "ms");
        Row("east (bursting) queue wait p99", Measures.Percentile(off.East, 99), Measures.Percentile(on.East, 99), "ms");
        Row("west (quiet) own jobs' queue wait p50", Measures.Percentile(off.West, 50), Measures.Percentile(on.West, 50), "ms");
        Row("west (quiet) own jobs' queue wait p99", Measures.Percentile(off.West, 99), Measures.Percentile(on.West, 99), "ms");
        Row("west processors idle while east was behind", 100 * off.WestIdle, 100 * on.WestIdle, "%");
        Row("east was behind for", off.Behind.TotalSeconds, on.Behind.TotalSeconds, "s");
        Console.WriteLine($"| east jobs run in west (overflowed) | {off.Overflowed} | {on.Overflowed} | |");
        Console.WriteLine($"| jobs (east / west) | {off.East.Count} / {off.West.Count} | {on.East.Count} / {on.West.Count} | |");
        Console.WriteLine();
        Console.WriteLine($"p99 queue wait in the bursting region: {Measures.Percentile(off.East, 99) / Math.Max(0.001, Measures.Percentile(on.East, 99)):F1}x lower with overflow (goal: at least 3x)");
        return 0;

        static void Row(string name, double off, double on, string unit) =>
            Console.WriteLine($"| {name} | {off:F1} {unit} | {on:F1} {unit} | {(off == 0 ? "-" : (on / off).ToString("F2", System.Globalization.CultureInfo.InvariantCulture))} |");
    }

    private sealed record RunResult(List<double> East, List<double> West, double WestIdle, TimeSpan Behind, int Overflowed);

    private sealed record Started(Guid JobId, string Worker, DateTimeOffset StartedAt, double QueueWaitMs, string? RanInRegion, bool Overflowed);

    private static async Task<RunResult> RunOnceAsync(BenchSettings settings, NatsClient nats, IJobQueue queue, bool overflow, int inferenceMs, int baseline, int burstSeconds)
    {
        var started = new ConcurrentDictionary<Guid, Started>();
        var finished = new ConcurrentDictionary<Guid, double>();
        using var stop = new CancellationTokenSource();
        var watching = Task.Run(async () =>
        {
            await foreach (var msg in nats.SubscribeAsync<byte[]>("log.*.events.*.mlp-test.*", cancellationToken: stop.Token))
            {
                switch (EventWire.Decode(msg.Headers, msg.Data))
                {
                    case V1.JobStarted s:
                        started.TryAdd(s.JobId, new Started(s.JobId, s.Worker, s.StartedAt, s.QueueWaitMs, s.RanInRegion, s.Overflowed));
                        break;
                    case V1.JobSucceeded s:
                        finished.TryAdd(s.JobId, s.RunMs);
                        if (s.Start is { } start)
                        {
                            // A short run carries its start on its ending.
                            started.TryAdd(s.JobId, new Started(s.JobId, s.Worker, start.StartedAt, start.QueueWaitMs, start.RanInRegion, start.Overflowed));
                        }

                        break;
                }
            }
        });
        await nats.PingAsync();

        var processors = new List<AppProcess>();
        foreach (var region in new[] { "east", "west" })
        {
            for (var i = 1; i <= ProcessorsPerRegion; i++)
            {
                processors.Add(await AppProcess.StartAsync(settings, "processor", "Serving mlp-test", new Dictionary<string, string>
                {
                    ["Processor__Models__0"] = "mlp-test",
                    ["Processor__Region"] = region,
                    ["Processor__WorkerId"] = $"{region}-{i}",
                    ["Processor__Slots"] = $"{SlotsPerProcessor}",
                    ["Processor__MaxBatch"] = "1",
                    ["Processor__FaultInjection"] = "true",
                    ["Processor__Scheduling__Overflow"] = overflow ? "true" : "false",
                    ["Processor__Scheduling__OverflowThreshold"] = "10",
                }));
            }
        }

        try
        {
            // Warm-up, not measured: 20 jobs per region through every processor's code paths.
            var warmUp = new List<Guid>();
            foreach (var region in new[] { "east", "west" })
            {
                for (var i = 0; i < 20; i++)
                {
                    var id = Guid.CreateVersion7();
                    warmUp.Add(id);
                    await queue.PublishAsync(Job(id, region, inferenceMs), CancellationToken.None);
                }
            }

            var warming = Stopwatch.StartNew();
            while (warmUp.Any(id => !finished.ContainsKey(id)) && warming.Elapsed < TimeSpan.FromMinutes(1))
            {
                await Task.Delay(50);
            }

            // Open loop: 2 s of baseline, the burst in east, then baseline until the end.
            var total = TimeSpan.FromSeconds(2 + burstSeconds + 6);
            var (burstFrom, burstTo) = (TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2 + burstSeconds));
            var jobs = new ConcurrentDictionary<Guid, string>();
            var publishes = new List<Task>();
            var clock = Stopwatch.StartNew();
            var sent = new Dictionary<string, long> { ["east"] = 0, ["west"] = 0 };
            while (clock.Elapsed < total)
            {
                var now = clock.Elapsed;
                foreach (var region in new[] { "east", "west" })
                {
                    var due = region == "east" ? Due(now, burstFrom, burstTo, baseline) : (long)(now.TotalSeconds * baseline);
                    for (; sent[region] < due; sent[region]++)
                    {
                        var id = Guid.CreateVersion7();
                        jobs[id] = region;
                        publishes.Add(queue.PublishAsync(Job(id, region, inferenceMs), CancellationToken.None));
                    }
                }

                await Task.Delay(5);
            }

            await Task.WhenAll(publishes);
            var deadline = Stopwatch.StartNew();
            while (finished.Count(f => jobs.ContainsKey(f.Key)) < jobs.Count)
            {
                if (deadline.Elapsed > TimeSpan.FromMinutes(3))
                {
                    throw new TimeoutException($"{jobs.Count - finished.Count(f => jobs.ContainsKey(f.Key))} jobs did not finish");
                }

                await Task.Delay(100);
            }

            var mine = started.Values.Where(s => jobs.ContainsKey(s.JobId)).ToList();
            var east = mine.Where(s => jobs[s.JobId] == "east").ToList();
            var west = mine.Where(s => jobs[s.JobId] == "west").ToList();

            // "Behind": from the start of the burst until the last job east submitted in it started.
            static DateTimeOffset Submitted(Started s) => s.StartedAt.AddMilliseconds(-s.QueueWaitMs);
            var burstStart = east.Min(Submitted) + burstFrom;
            var lastBurstStart = east.Where(s => Submitted(s) <= burstStart + (burstTo - burstFrom)).Max(s => s.StartedAt);
            var behind = lastBurstStart - burstStart;
            var westBusyMs = mine
                .Where(s => s.Worker.StartsWith("west", StringComparison.Ordinal) && s.StartedAt >= burstStart && s.StartedAt <= lastBurstStart)
                .Sum(s => finished.GetValueOrDefault(s.JobId));
            var westIdle = behind <= TimeSpan.Zero ? 0 : Math.Max(0, 1 - (westBusyMs / (ProcessorsPerRegion * SlotsPerProcessor * behind.TotalMilliseconds)));
            return new RunResult(
                east.Select(s => s.QueueWaitMs).ToList(),
                west.Select(s => s.QueueWaitMs).ToList(),
                westIdle,
                behind,
                east.Count(s => s.Overflowed));
        }
        finally
        {
            foreach (var processor in processors)
            {
                await processor.DisposeAsync();
            }

            await stop.CancelAsync();
            await watching.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>East's jobs due by <paramref name="now"/>: baseline, ten times that during the burst.</summary>
    private static long Due(TimeSpan now, TimeSpan burstFrom, TimeSpan burstTo, int baseline)
    {
        var before = Math.Min(now.TotalSeconds, burstFrom.TotalSeconds) * baseline;
        var during = Math.Clamp(now.TotalSeconds - burstFrom.TotalSeconds, 0, (burstTo - burstFrom).TotalSeconds) * 10 * baseline;
        var after = Math.Max(0, now.TotalSeconds - burstTo.TotalSeconds) * baseline;
        return (long)(before + during + after);
    }

    private static JobCommand Job(Guid id, string region, int inferenceMs) => new(
        id, "bench", "mlp-test", "1", region, "interactive", DateTimeOffset.UtcNow, "bench",
        [new Tensor("x", "FP32", [1, 4], JsonSerializer.SerializeToElement(new[] { 1f, 2f, 3f, 4f }))],
        new Dictionary<string, string> { ["cqrsi-test-fault"] = $"sleep:{inferenceMs}" });
}
