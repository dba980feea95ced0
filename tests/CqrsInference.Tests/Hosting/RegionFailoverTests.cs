using System.Collections.Concurrent;
using System.Diagnostics;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Xunit.Abstractions;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// The regions topology of ClusterTests with a witness region (three one-server clusters joined by
/// gateways): every east server is SIGKILLed while clients submit to both regions, west takes
/// over from its mirrors (<see cref="RegionFailover"/>), and east comes back. At the JetStream
/// level: the submitters publish as the API does (message id = job id), the workers run a job by
/// publishing its terminal event (message id <c>&lt;job&gt;:terminal</c>) and then acking it, as the
/// processors do.
/// </summary>
public sealed class RegionFailoverTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task West_takes_over_from_its_mirrors_when_every_east_server_is_killed_and_east_returns_without_duplicates()
    {
        var servers = await StartRegionsAsync("east", "west", "witness");
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            var options = new TopologyOptions();
            await using var east = new NatsClient(servers["east"].Url);
            await using var west = new NatsClient(servers["west"].Url);
            var (eastJs, westJs) = (east.CreateJetStreamContext(), west.CreateJetStreamContext());
            await Retry.Until("the metadata leader", () => Answers(eastJs), ok => ok);
            await new NatsTopology(eastJs, options).EnsureAsync(stop.Token);
            var failover = new RegionFailover(eastJs);
            await failover.EnsureStandbyAsync(["west"], 1, stop.Token);

            // East is home: both regions' clients submit through it, its worker runs the jobs.
            var accepted = new ConcurrentDictionary<Guid, (string Region, long At)>();
            var clock = Stopwatch.StartNew();
            using var submitting = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
            var eastSubmitter = SubmitAsync(() => eastJs, "east", accepted, clock, submitting.Token);
            var westSubmitter = SubmitAsync(() => westJs, "west", accepted, clock, submitting.Token);
            using var eastWorking = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
            var eastWorker = WorkAsync(eastJs, "east", eastWorking.Token);
            var lags = new ConcurrentBag<long>();
            using var sampling = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
            var sampler = SampleLagAsync(failover, lags, sampling.Token);

            await Retry.Until("300 accepted jobs", () => Task.FromResult(accepted.Count), n => n >= 300, Patience);
            await servers["east"].StopProcessAsync();
            var killedAt = clock.ElapsedMilliseconds;
            await sampling.CancelAsync();
            await sampler;
            await eastWorking.CancelAsync();
            await eastWorker;

            // West takes over; east's clients are re-pointed to west (DNS or configuration).
            var westFailover = new RegionFailover(westJs);
            var copyingFromTheMirror = false;
            var report = await westFailover.TakeOverAsync(
                "west",
                async ct =>
                {
                    await new NatsTopology(westJs, options).EnsureAsync(ct);
                    copyingFromTheMirror = await westFailover.IsTakeoverSourceAsync("west", ct);
                },
                stop.Token);
            var tookOverAt = clock.ElapsedMilliseconds;
            copyingFromTheMirror.ShouldBeTrue("while the takeover copies, west's mirror (made before the new log) is its source");
            (await westFailover.IsTakeoverSourceAsync("west", stop.Token)).ShouldBeFalse("the takeover deleted its source");

            // A standby request for west delivered after the takeover (sent to east before it) makes
            // mirrors in west, where the log lives now: no takeover's source; deleted as late.
            await westFailover.EnsureStandbyAsync(["west"], 1, stop.Token);
            (await westFailover.IsTakeoverSourceAsync("west", stop.Token)).ShouldBeFalse("a mirror made after the log is no takeover's source");
            (await westFailover.DropLateMirrorsAsync("west", stop.Token)).ShouldBe(RegionFailover.MirroredStreams.Count);
            (await westFailover.DropLateMirrorsAsync("west", stop.Token)).ShouldBe(0);
            output.WriteLine($"takeover: {string.Join(", ", report.Copied.Select(c => $"{c.Key}={c.Value}"))}; submissions {report.Submissions}, ended {report.EndedJobs}; {tookOverAt - killedAt} ms after the kill");
            eastJs = westJs;
            var westWorker = WorkAsync(westJs, "west", stop.Token);
            await Retry.Until("west to accept 100 more jobs", () => Task.FromResult(accepted.Count(a => a.Value.At > tookOverAt)), n => n >= 100, Patience);
            await submitting.CancelAsync();
            await Task.WhenAll(eastSubmitter, westSubmitter);

            // East returns with an empty JetStream store (docs/DEPLOY.md), west's log stays the only one.
            servers["east"].WipeJetStreamStore();
            await servers["east"].StartProcessAsync();
            var terminals = await Retry.Until(
                "every job in west's log to end",
                () => TerminalsAsync(westJs, stop.Token),
                t => t.Submitted.All(t.Ended.ContainsKey),
                Patience,
                TimeSpan.FromMilliseconds(500));
            (await westJs.GetStreamAsync(NatsTopology.EventsStream)).Info.Cluster?.Name.ShouldBe("west");
            await using var eastAgain = new NatsClient(servers["east"].Url);
            var westLog = (await westJs.GetStreamAsync(NatsTopology.EventsStream)).Info;
            async Task<string> EastSeesAsync()
            {
                try
                {
                    var log = (await eastAgain.CreateJetStreamContext().GetStreamAsync(NatsTopology.EventsStream)).Info;
                    return $"{log.Cluster?.Name} {log.Created:O}";
                }
                catch (NatsJSException e)
                {
                    return e.Message;
                }
            }

            await Retry.Until("east's clients to see one log, the takeover's, in west", EastSeesAsync, seen => seen == $"west {westLog.Created:O}", Patience);

            var lost = accepted.Where(a => !terminals.Submitted.Contains(a.Key)).ToList();
            output.WriteLine($"accepted {accepted.Count}; lost (accepted in east, not mirrored) {lost.Count}; mirror lag p50 {Percentile(lags, 0.5)} p99 {Percentile(lags, 0.99)} max {lags.DefaultIfEmpty().Max()} messages");
            lost.ShouldAllBe(l => l.Value.At <= killedAt, "nothing accepted after the takeover is lost");
            lost.ShouldAllBe(l => killedAt - l.Value.At < 1000, "only jobs accepted in the last second before the kill may be lost");
            lost.Count.ShouldBeLessThanOrEqualTo((int)lags.DefaultIfEmpty().Max() + 50, "lost jobs are bounded by the mirror lag (plus what was accepted between samples)");
            terminals.Ended.Where(e => accepted.ContainsKey(e.Key)).ShouldAllBe(e => e.Value == 1, "every job has exactly one terminal event");
        }
        finally
        {
            await stop.CancelAsync();
            foreach (var server in servers.Values)
            {
                await server.DisposeAsync();
            }
        }
    }

    internal static Task<Dictionary<string, NatsServerProcess>> StartRegionsAsync(params string[] regions) =>
        NatsServerProcess.WithFreshPortsAsync(() => StartRegionsOnceAsync(regions));

    private static async Task<Dictionary<string, NatsServerProcess>> StartRegionsOnceAsync(string[] regions)
    {
        var ports = regions.ToDictionary(r => r, _ => NatsServerProcess.FreePort());
        var servers = new Dictionary<string, NatsServerProcess>();
        try
        {
            foreach (var (name, port) in ports)
            {
                servers[name] = (await NatsServerProcess.StartClusterAsync(name, 1, port, ports.Where(p => p.Key != name).ToDictionary()))[0];
            }
        }
        catch
        {
            foreach (var server in servers.Values)
            {
                await server.DisposeAsync();
            }

            throw;
        }

        return servers;
    }

    private static async Task<bool> Answers(INatsJSContext js)
    {
        try
        {
            await js.GetAccountInfoAsync();
            return true;
        }
        catch (NatsJSException)
        {
            return false;
        }
    }

    private static async Task SubmitAsync(Func<INatsJSContext> js, string region, ConcurrentDictionary<Guid, (string, long)> accepted, Stopwatch clock, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var id = Guid.NewGuid();
            try
            {
                var ack = await js().PublishAsync($"jobs.{region}.mlp-test.normal.default.{id:N}", "{}"u8.ToArray(), opts: new NatsJSPubOpts { MsgId = id.ToString(), RetryAttempts = 1 }, cancellationToken: ct);
                ack.EnsureSuccess();
                accepted[id] = (region, clock.ElapsedMilliseconds);
            }
            catch (Exception e) when (e is NatsJSException or NatsException or TimeoutException or OperationCanceledException)
            {
                // Not accepted (the home is down, or taking over): a client retries with a new job.
                await Task.Delay(100, CancellationToken.None);
            }

            await Task.Delay(5, CancellationToken.None);
        }
    }

    private static async Task WorkAsync(INatsJSContext js, string region, CancellationToken ct)
    {
        try
        {
            var consumer = await js.CreateOrUpdateConsumerAsync(NatsTopology.JobsStream, new ConsumerConfig("failover-worker") { AckWait = TimeSpan.FromSeconds(5) }, ct);
            await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: ct))
            {
                var job = Guid.ParseExact(msg.Subject.Split('.')[^1], "N");
                (await js.PublishAsync(LogSubjects.JobEvent(region, "mlp-test", job), "{}"u8.ToArray(), opts: new NatsJSPubOpts { MsgId = $"{job}:terminal" }, cancellationToken: ct)).EnsureSuccess();
                await msg.AckAsync(cancellationToken: ct);
            }
        }
        catch (Exception e) when (e is NatsJSException or NatsException or OperationCanceledException)
        {
            // Its region is gone, or the test is over.
        }
    }

    private static async Task SampleLagAsync(RegionFailover failover, ConcurrentBag<long> lags, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                lags.Add((await failover.LagAsync(NatsTopology.EventsStream, "west", ct)).Lag);
                await Task.Delay(50, ct);
            }
            catch (Exception e) when (e is NatsJSException or NatsException or OperationCanceledException)
            {
                return;
            }
        }
    }

    private sealed record Terminals(HashSet<Guid> Submitted, Dictionary<Guid, int> Ended);

    /// <summary>Every submission and the terminal events per job in the log, read whole.</summary>
    private static async Task<Terminals> TerminalsAsync(INatsJSContext js, CancellationToken ct)
    {
        var result = new Terminals([], []);
        var last = (await js.GetStreamAsync(NatsTopology.EventsStream, cancellationToken: ct)).Info.State.LastSeq;
        var consumer = await js.CreateOrderedConsumerAsync(NatsTopology.EventsStream, cancellationToken: ct);
        await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: ct))
        {
            var id = msg.Headers?["Nats-Msg-Id"].ToString() ?? "";
            if (JobLifecycle.JobEndedBy(id) is { } job)
            {
                result.Ended[job] = result.Ended.GetValueOrDefault(job) + 1;
            }
            else if (Guid.TryParse(id, out var submitted))
            {
                result.Submitted.Add(submitted);
            }

            if (msg.Metadata?.Sequence.Stream >= last)
            {
                break;
            }
        }

        return result;
    }

    internal static long Percentile(IEnumerable<long> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted[(int)Math.Min(sorted.Count - 1, Math.Floor(p * sorted.Count))];
    }
}
