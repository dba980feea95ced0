using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;

namespace CqrsInference.Bench;

/// <summary>
/// Region failover (issue 22) as an operator meets it. bench.sh starts three one-server regions
/// joined by gateways (east, west, and a witness that keeps JetStream's metadata majority); an
/// API and a processor run in east, an API, a processor and the recorders in west, both with
/// <c>Failover:StandbyRegions</c> = east, west, so west keeps mirrors of east's streams. Under
/// open-loop load in both regions the mirror lag is sampled (<see cref="RegionFailover.LagAsync"/>);
/// then east's nats-server is SIGKILLed, west takes over through its <c>POST /v1/admin/failover</c>,
/// and the bench times the takeover and the serving of the mirrored backlog (until every mirrored
/// job has its ending) and of the jobs west held meanwhile, counts west's refusals while east was
/// lost, and counts the jobs accepted before the kill that were not mirrored (lost).
/// </summary>
internal static class FailoverBench
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    public static async Task<int> RunAsync(BenchSettings settings, int rate, int seconds, int inferenceMs)
    {
        var (eastUrl, westUrl) = FreeUrls();
        var east = settings with { NatsUrl = Env("BENCH_EAST_NATS"), ApiUrl = eastUrl };
        var west = settings with { NatsUrl = Env("BENCH_WEST_NATS"), ApiUrl = westUrl };
        Console.WriteLine($"failover: {rate} jobs/s per region (east, west) for {seconds} s, mlp-test"
            + (inferenceMs == 0 ? "" : $" with {inferenceMs} ms of simulated inference, {Slots} slots per processor")
            + "; then east's nats-server is SIGKILLed, west takes over, and the submits stop");
        await using var eastApp = await AppProcess.StartAsync(east, "api,processor", "Serving mlp-test", Region("east", inferenceMs));
        await using var westApp = await AppProcess.StartAsync(west, "api,processor,projections", "Serving mlp-test", Region("west", inferenceMs));
        await using var eastNats = new NatsClient(east.NatsUrl);
        await using var westNats = new NatsClient(west.NatsUrl);
        var westJs = westNats.CreateJetStreamContext();
        var standby = new RegionFailover(westJs);
        await WaitForMirrorAsync(standby);
        var endings = new CompletionWatcher(westNats, "log.*.events.*.mlp-test.*");
        await endings.StartAsync();

        using var eastHttp = east.CreateClient();
        using var westHttp = west.CreateClient();
        var load = new FailoverLoad(eastHttp, westHttp, rate, inferenceMs);
        using var loading = new CancellationTokenSource();
        var clients = load.RunAsync(loading.Token);
        var lag = await MirrorLag.SampleAsync(eastNats.CreateJetStreamContext(), standby, TimeSpan.FromSeconds(seconds));

        load.StopEast();
        var killedAt = KillEast();
        Console.WriteLine($"  {DateTime.UtcNow:HH:mm:ss} east's nats-server SIGKILLed; asking west to take over");
        var takeover = await TakeOverAsync(west, westApp);
        var tookOverAt = Stopwatch.GetTimestamp();

        // From here only the backlog runs: what the lost home left, served by west.
        await loading.CancelAsync();
        await clients;
        Console.WriteLine($"  {DateTime.UtcNow:HH:mm:ss} takeover answered after {Stopwatch.GetElapsedTime(killedAt, tookOverAt).TotalSeconds:F1} s: {takeover.Body}");

        var mirrored = await MirroredJobsAsync(westJs);
        var before = load.AcceptedBefore(killedAt);
        var backlog = before.Where(j => mirrored.Contains(j.Id) && !endings.IsDone(j.Id)).Select(j => j.Id).ToList();
        await endings.WaitForAsync(backlog, Patience);
        var servedAt = backlog.Count == 0 ? tookOverAt : backlog.Max(endings.CompletedAt);

        // West's own jobs accepted while east was lost were held in west; they run once forwarded.
        var held = load.AcceptedBefore(tookOverAt).Where(j => j.Region == "west" && j.At >= killedAt).Select(j => j.Id).ToList();
        await endings.WaitForAsync(held, Patience);
        var heldServedAt = held.Count == 0 ? tookOverAt : held.Max(endings.CompletedAt);

        // Lost: accepted before the kill and not in the log now (a job west held for a moment before
        // the kill, when one look at the log went unanswered, reaches the log after the takeover).
        var inLog = await MirroredJobsAsync(westJs);
        var result = new FailoverResult(lag, killedAt, takeover, tookOverAt, backlog.Count, servedAt,
            before, before.Where(j => !inLog.Contains(j.Id)).ToList(), load, (held.Count, heldServedAt));
        result.Print();
        return 0;
    }

    /// <summary>Two loopback URLs on ports free now (both held while chosen): another checkout's benchmark may hold the usual API port.</summary>
    private static (string East, string West) FreeUrls()
    {
        using var east = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        using var west = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        east.Start();
        west.Start();
        return (Url(east), Url(west));

        static string Url(System.Net.Sockets.TcpListener listener) => $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
    }

    private static string Env(string name) => Environment.GetEnvironmentVariable(name) ?? throw new InvalidOperationException($"{name} is not set (run bench.sh failover)");

    private const int Slots = 2;

    /// <summary>
    /// A region's application settings: both regions served, mirrors in both, quick rounds, overflow
    /// from the first queued job (so west runs east's queue after the takeover); with simulated
    /// inference, one job a run in <see cref="Slots"/> slots.
    /// </summary>
    private static Dictionary<string, string> Region(string region, int inferenceMs)
    {
        var settings = Region(region);
        if (inferenceMs > 0)
        {
            settings["Processor__FaultInjection"] = "true";
            settings["Processor__Slots"] = $"{Slots}";
            settings["Processor__MaxBatch"] = "1";
        }

        return settings;
    }

    private static Dictionary<string, string> Region(string region) => new()
    {
        ["Processor__Models__0"] = "mlp-test",
        ["Processor__Region"] = region,
        ["Processor__WorkerId"] = $"{region}-1",
        ["Processor__Scheduling__OverflowThreshold"] = "1",
        ["Submit__Region"] = region,
        ["Submit__Regions__0"] = "east",
        ["Submit__Regions__1"] = "west",
        ["Submit__DurableWithin"] = "00:00:02",
        ["Failover__StandbyRegions__0"] = "east",
        ["Failover__StandbyRegions__1"] = "west",
        ["Failover__Every"] = "00:00:02",
    };

    private static async Task WaitForMirrorAsync(RegionFailover standby)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await standby.LagAsync(NatsTopology.EventsStream, "west", CancellationToken.None);
                return;
            }
            catch (NatsJSException) when (waited.Elapsed < Patience)
            {
                await Task.Delay(200);
            }
        }
    }

    /// <summary>SIGKILLs east's only nats-server (its pid file, written by the server) and answers when.</summary>
    private static long KillEast()
    {
        var pid = int.Parse(File.ReadAllText(Env("BENCH_EAST_NATS_PID_FILE")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        using var server = Process.GetProcessById(pid);
        server.Kill();
        server.WaitForExit();
        return Stopwatch.GetTimestamp();
    }

    /// <summary>Asks west's API to take over every second until it answers 200 (409 and 503 while the super-cluster still sees east, or has no metadata leader).</summary>
    private static async Task<Takeover> TakeOverAsync(BenchSettings settings, AppProcess westApp)
    {
        using var west = settings.CreateClient();
        west.Timeout = TimeSpan.FromMinutes(3);
        string? failure = null;
        var refusals = new Dictionary<int, int>();
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < Patience)
        {
            var call = Stopwatch.StartNew();
            try
            {
                using var response = await west.PostAsJsonAsync("/v1/admin/failover", new { lostRegion = "east" });
                var body = await response.Content.ReadAsStringAsync();
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return new Takeover(JsonDocument.Parse(body).RootElement.Clone(), call.Elapsed, refusals);
                }

                refusals[(int)response.StatusCode] = refusals.GetValueOrDefault((int)response.StatusCode) + 1;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                refusals[0] = refusals.GetValueOrDefault(0) + 1;
                failure = e.Message;
            }

            await Task.Delay(TimeSpan.FromSeconds(1));
        }

        var output = westApp.Output;
        throw new TimeoutException($"West did not take over in {Patience}: {string.Join(", ", refusals.Select(r => $"{r.Key}×{r.Value}"))} ({failure});"
            + $" west's application said, last:\n{output[Math.Max(0, output.Length - 6000)..]}");
    }

    /// <summary>The jobs queued in west's log after the takeover: what the mirror held (and west's own since).</summary>
    private static async Task<HashSet<Guid>> MirroredJobsAsync(INatsJSContext js)
    {
        var last = (await js.GetStreamAsync(NatsTopology.EventsStream)).Info.State.LastSeq;
        var jobs = new HashSet<Guid>();
        if (last == 0)
        {
            return jobs;
        }

        var consumer = await js.CreateOrderedConsumerAsync(NatsTopology.EventsStream, new NatsJSOrderedConsumerOpts { DeliverPolicy = ConsumerConfigDeliverPolicy.All, HeadersOnly = true });
        await foreach (var msg in consumer.ConsumeAsync<NatsMemoryOwner<byte>>())
        {
            msg.Data.Dispose();
            if (msg.Subject.Split('.') is [_, _, "jobs", ..] && msg.Headers?["Nats-Msg-Id"].ToString() is { } id && JobLifecycle.QueuedBy(id) is { } queued)
            {
                jobs.Add(queued.Job);
            }

            if (msg.Metadata?.Sequence.Stream >= last)
            {
                return jobs;
            }
        }

        return jobs;
    }

    internal sealed record Takeover(JsonElement Body, TimeSpan Call, IReadOnlyDictionary<int, int> Refusals);
}
