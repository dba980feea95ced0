using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using NATS.Net;
using Xunit.Abstractions;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// Region failover through the whole application (issue 22): three one-server regions (east, west,
/// a witness) as in <see cref="RegionFailoverTests"/>; an API and a processor in east, an API, a
/// processor and the recorders in west, both with <c>Failover:StandbyRegions</c> = east, west.
/// Clients submit to both APIs; every east server is SIGKILLed; west holds the jobs it accepts
/// until the takeover (the operator's, through west's <c>POST /v1/admin/failover</c>, or west's own
/// after <c>Failover:TakeOverAfter</c>) and forwards them after it; east's clients are re-pointed
/// to west; a late standby request makes a mirror of the log in west; east returns (with an empty
/// JetStream store, as docs/DEPLOY.md asks).
/// </summary>
public sealed class RegionFailoverPipelineTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(45);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task West_keeps_accepting_takes_over_and_every_accepted_job_is_recorded_with_one_ending(bool automatic)
    {
        var servers = await RegionFailoverTests.StartRegionsAsync("east", "west", "witness");
        try
        {
            var schema = TestEnvironment.NewSchema();
            await using var east = Host(servers["east"].Url, schema, "east", "api,processor");
            await using var west = Host(servers["west"].Url, schema, "west", "api,processor,projections", automatic ? "00:00:05" : null);
            using var eastClient = east.CreateClient();
            using var westClient = west.CreateClient();
            using var westOperator = west.CreateClient();
            westOperator.DefaultRequestHeaders.Authorization = new("Bearer", TestEnvironment.OperatorKey);
            await using var nats = new NatsClient(servers["west"].Url);
            var failover = new RegionFailover(nats.CreateJetStreamContext());
            await Retry.Until("west's mirror of the log", () => MirrorExistsAsync(failover), ok => ok, Patience);

            var run = new Submitting(eastClient, westClient);
            using var submitting = new CancellationTokenSource();
            var clients = Task.WhenAll(run.SubmitAsync("east", submitting.Token), run.SubmitAsync("west", submitting.Token));
            var lags = new ConcurrentBag<long>();
            using var sampling = new CancellationTokenSource();
            var sampler = SampleLagAsync(failover, lags, sampling.Token);
            await Retry.Until("200 accepted jobs", () => Task.FromResult(run.Accepted.Count), n => n >= 200, Patience);
            (await TakeOverAsync(westOperator, "east")).Status.ShouldBe(HttpStatusCode.Conflict, "east still answers for the log");

            await servers["east"].StopProcessAsync();
            var killedAt = run.Clock.ElapsedMilliseconds;
            await sampling.CancelAsync();
            await sampler;
            if (!automatic)
            {
                // A job held more than the API's 30 s memory of it still reads as queued (from the hold).
                var heldJob = await Retry.Until("a job west held", () => Task.FromResult(run.Accepted.FirstOrDefault(a => a.Value.Region == "west" && a.Value.At > killedAt)), a => a.Key != Guid.Empty, Patience);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(0, heldJob.Value.At + 31_000 - run.Clock.ElapsedMilliseconds)));
                using var read = await westClient.GetAsync($"/v1/jobs/{heldJob.Key}");
                read.StatusCode.ShouldBe(HttpStatusCode.OK);
                (await read.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString().ShouldBe("queued");
            }

            var takeover = automatic
                ? await Retry.Until("west's automatic takeover", () => TakeOverAsync(westOperator, "east"), t => t.Body.Contains("Takeover already done", StringComparison.Ordinal), Patience, TimeSpan.FromMilliseconds(250))
                : await Retry.Until("west's takeover", () => TakeOverAsync(westOperator, "east"), t => t.Status == HttpStatusCode.OK, Patience, TimeSpan.FromSeconds(1));
            var tookOverAt = run.Clock.ElapsedMilliseconds;
            output.WriteLine($"takeover ({(automatic ? "automatic" : "operator")}) {tookOverAt - killedAt} ms after the kill: {takeover.Body}");
            (await TakeOverAsync(westOperator, "east")).Status.ShouldBe(HttpStatusCode.Conflict, "the takeover is done");

            // A standby request sent to east before the takeover and delivered after it (east's
            // clients flush their buffers when east comes back) makes a mirror of the log in west,
            // where the log lives now: it is no takeover still copying (west does not hold what it
            // accepts from here on: those jobs must end below) and west's API deletes it.
            (await StreamExistsAsync(nats, RegionFailover.MirrorOf(NatsTopology.EventsStream, "west"))).ShouldBeFalse("a takeover that is done has deleted the mirror it copied");
            await failover.EnsureStandbyAsync(["west"], 1, CancellationToken.None);
            await Retry.Until("west to delete the late mirror of its own log", () => StreamExistsAsync(nats, RegionFailover.MirrorOf(NatsTopology.EventsStream, "west")), exists => !exists, Patience);
            var heldAccepted = run.Accepted.Count(a => a.Value.Region == "west" && a.Value.At > killedAt && a.Value.At < tookOverAt);
            output.WriteLine($"west accepted {heldAccepted} jobs between the kill and the takeover; west refused {run.Refused.Count(r => r.Region == "west")}");
            heldAccepted.ShouldBeGreaterThan(0, "west accepts while east is lost (its jobs are held in west)");

            run.RepointEastTo(westClient);
            await Retry.Until("west to accept 100 more jobs", () => Task.FromResult(run.Accepted.Count(a => a.Value.At > tookOverAt)), n => n >= 100, Patience);
            await submitting.CancelAsync();
            await clients;
            servers["east"].WipeJetStreamStore();
            await servers["east"].StartProcessAsync();

            // Read again only the jobs not seen ended yet (thousands are accepted).
            var recorded = new ConcurrentDictionary<Guid, (int Submitted, int Ended)>();
            bool Owed(KeyValuePair<Guid, (string Region, long At)> a) => !(a.Value.Region == "east" && a.Value.At > killedAt - 1000 && a.Value.At < tookOverAt);
            await Retry.Until(
                "every job accepted in west, and every east job accepted more than a second before the kill or after the takeover, to be recorded as ended",
                async () =>
                {
                    await RecordedAsync(westClient, run.Accepted.Keys.Where(j => !recorded.TryGetValue(j, out var r) || r.Ended == 0), recorded);
                    return run.Accepted.Count(a => Owed(a) && recorded[a.Key].Ended == 0);
                },
                notEnded => notEnded == 0,
                TimeSpan.FromSeconds(120),
                TimeSpan.FromSeconds(1)).ContinueWith(
                    waited =>
                    {
                        // On a timeout, say which jobs did not end: their region, when they were accepted, whether recorded.
                        foreach (var a in run.Accepted.Where(a => Owed(a) && (!recorded.TryGetValue(a.Key, out var r) || r.Ended == 0)).Take(20))
                        {
                            output.WriteLine($"not ended: {a.Key} {a.Value.Region} accepted {a.Value.At - killedAt} ms after the kill (takeover at {tookOverAt - killedAt}), submitted {recorded.GetValueOrDefault(a.Key).Submitted}");
                        }

                        return waited;
                    },
                    TaskScheduler.Default).Unwrap();
            var lost = run.Accepted.Where(a => recorded[a.Key].Submitted == 0).ToList();
            output.WriteLine($"accepted {run.Accepted.Count} (east {run.Accepted.Count(a => a.Value.Region == "east")}); lost (accepted in east, not mirrored) {lost.Count}; "
                + $"mirror lag p50 {RegionFailoverTests.Percentile(lags, 0.5)} p99 {RegionFailoverTests.Percentile(lags, 0.99)} max {lags.DefaultIfEmpty().Max()} messages over {lags.Count} samples");
            lost.ShouldAllBe(l => l.Value.Region == "east" && l.Value.At <= killedAt, "only east's jobs accepted before the kill may be lost");
            lost.Count.ShouldBeLessThanOrEqualTo((int)lags.DefaultIfEmpty().Max() + 20, "lost jobs are bounded by the mirror lag (plus what was accepted between samples)");
            recorded.Where(r => r.Value.Submitted == 1).ShouldAllBe(r => r.Value.Ended == 1, "every recorded job has exactly one terminal event");
            recorded.Values.ShouldAllBe(r => r.Submitted <= 1);
            run.Refused.Where(r => r.Region == "west").ShouldBeEmpty("west answers every submit with 202, before, during and after east's loss");
        }
        catch (Exception) when (DescribeServers(servers))
        {
            throw; // not reached: the filter only writes down what the servers said
        }
        finally
        {
            foreach (var server in servers.Values)
            {
                await server.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// What each region's server last said, on a failure: a full run once found east's server
    /// unreachable right after it had said it was ready (not reproduced alone).
    /// </summary>
    private bool DescribeServers(Dictionary<string, NatsServerProcess> servers)
    {
        foreach (var (region, server) in servers)
        {
            var said = server.Output;
            output.WriteLine($"--- nats-server {region} (port {server.Port}), its last output:\n{said[Math.Max(0, said.Length - 3000)..]}");
        }

        return false;
    }

    private static PipelineHost Host(string url, string schema, string region, string roles, string? takeOverAfter = null) => new(url, schema, roles, new Dictionary<string, string?>
    {
        ["Failover:TakeOverAfter"] = takeOverAfter,
        ["Submit:Region"] = region,
        ["Submit:Regions:0"] = "east",
        ["Submit:Regions:1"] = "west",
        ["Submit:DurableWithin"] = "00:00:02",
        ["Failover:StandbyRegions:0"] = "east",
        ["Failover:StandbyRegions:1"] = "west",
        ["Failover:Every"] = "00:00:02",
        ["Processor:Region"] = region,
        ["Processor:WorkerId"] = $"{region}-1",
        ["Processor:Scheduling:OverflowThreshold"] = "1",
    });

    private static async Task<bool> MirrorExistsAsync(RegionFailover failover)
    {
        try
        {
            await failover.LagAsync(NatsTopology.EventsStream, "west", CancellationToken.None);
            return true;
        }
        catch (NATS.Client.JetStream.NatsJSException)
        {
            return false;
        }
    }

    private static async Task<bool> StreamExistsAsync(NatsClient nats, string stream)
    {
        try
        {
            await nats.CreateJetStreamContext().GetStreamAsync(stream);
            return true;
        }
        catch (NATS.Client.JetStream.NatsJSApiException e) when (e.Error.ErrCode == 10059)
        {
            return false;
        }
    }

    private static async Task<(HttpStatusCode Status, string Body)> TakeOverAsync(HttpClient client, string lost)
    {
        using var response = await client.PostAsJsonAsync("/v1/admin/failover", new { lostRegion = lost });
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
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
            catch (Exception e) when (e is NATS.Client.Core.NatsException or OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Each job's recorded submissions and endings, read through west's API (from PostgreSQL), into <paramref name="counts"/>.</summary>
    private static async Task RecordedAsync(HttpClient client, IEnumerable<Guid> jobs, ConcurrentDictionary<Guid, (int Submitted, int Ended)> counts)
    {
        await Parallel.ForEachAsync(jobs, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (job, _) =>
        {
            // One read: a job accepted but not yet recorded reads from the API's memory for a while
            // only, so a second read could differ from the first.
            using var response = await client.GetAsync($"/v1/jobs/{job}/events");
            counts[job] = response.StatusCode == HttpStatusCode.NotFound
                ? (0, 0)
                : Scenarios.RecordedCounts(await response.EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonElement>());
        });
    }

    /// <summary>Two clients, one per region, submitting until stopped; east's is re-pointed to west after the takeover.</summary>
    private sealed class Submitting(HttpClient east, HttpClient west)
    {
        private HttpClient _east = east;

        public ConcurrentDictionary<Guid, (string Region, long At)> Accepted { get; } = new();

        /// <summary>Submits answered other than 202 (or not answered), with the status (0: no answer).</summary>
        public ConcurrentBag<(string Region, long At, int Status)> Refused { get; } = [];

        public Stopwatch Clock { get; } = Stopwatch.StartNew();

        public void RepointEastTo(HttpClient client) => Volatile.Write(ref _east, client);

        public async Task SubmitAsync(string region, CancellationToken ct)
        {
            for (var i = 0; !ct.IsCancellationRequested; i++)
            {
                try
                {
                    var client = region == "east" ? Volatile.Read(ref _east) : west;
                    var job = await client.SubmitAsync(Scenarios.MlpJob([i, 1, 2, 3]));
                    if (job.Status == HttpStatusCode.Accepted)
                    {
                        Accepted[job.Id] = (region, Clock.ElapsedMilliseconds);
                    }
                    else
                    {
                        Refused.Add((region, Clock.ElapsedMilliseconds, (int)job.Status));
                    }
                }
                catch (Exception e) when (e is HttpRequestException or JsonException or TaskCanceledException)
                {
                    // Not accepted: a client tries again with a new job.
                    Refused.Add((region, Clock.ElapsedMilliseconds, 0));
                }

                await Task.Delay(50, CancellationToken.None);
            }
        }
    }
}
