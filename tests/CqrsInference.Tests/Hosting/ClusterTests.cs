using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using NATS.Net;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// Real multi-server NATS on loopback: a three-node JetStream cluster with R3 streams whose stream
/// leader is killed under load, and two regions as two clusters joined by gateways (a
/// super-cluster) with overflow across them.
/// </summary>
public sealed class ClusterTests
{
    [Fact]
    public async Task Killing_the_stream_leader_under_load_loses_no_accepted_job()
    {
        var servers = await NatsServerProcess.StartClusterAsync("c", 3);
        try
        {
            var urls = string.Join(",", servers.Select(s => s.Url));
            await using var host = new PipelineHost(urls, TestEnvironment.NewSchema(), "api,processor,projections",
                new Dictionary<string, string?> { ["Topology:Replicas"] = "3" });
            using var client = host.CreateClient();
            await using var nats = new NatsClient(urls);
            var js = nats.CreateJetStreamContext();
            (await js.GetStreamAsync(NatsTopology.EventsStream)).Info.Config.NumReplicas.ShouldBe(3);

            // Eight clients submit 240 jobs, each with its own Idempotency-Key, and retry whatever
            // is not accepted (the API answers 5xx while the stream elects a new leader).
            const int Clients = 8, PerClient = 30;
            var accepted = new ConcurrentDictionary<string, Guid>();
            var retries = 0;
            var submitting = Task.WhenAll(Enumerable.Range(0, Clients).Select(c => Task.Run(async () =>
            {
                for (var i = 0; i < PerClient; i++)
                {
                    var key = $"cluster-{c}-{i}";
                    var deadline = DateTime.UtcNow.AddSeconds(90);
                    while (true)
                    {
                        try
                        {
                            var job = await client.SubmitAsync(Scenarios.MlpJob([c, i, 1, 2]), key);
                            if (job.Status == HttpStatusCode.Accepted)
                            {
                                accepted[key] = job.Id;
                                break;
                            }
                        }
                        catch (Exception e) when (e is HttpRequestException or JsonException or TaskCanceledException)
                        {
                        }

                        Interlocked.Increment(ref retries);
                        DateTime.UtcNow.ShouldBeLessThan(deadline, $"job {key} was never accepted");
                        await Task.Delay(250);
                    }
                }
            })));

            await Retry.Until("a quarter of the jobs to be accepted", () => Task.FromResult(accepted.Count), n => n >= Clients * PerClient / 4);
            var leader = (await js.GetStreamAsync(NatsTopology.EventsStream)).Info.Cluster?.Leader;
            leader.ShouldNotBeNull();
            await servers.Single(s => s.Name == leader).StopProcessAsync();
            await submitting;

            accepted.Count.ShouldBe(Clients * PerClient);
            foreach (var id in accepted.Values)
            {
                await client.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(120));
                var events = await client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}/events");
                events.EnumerateArray().Count(e => e.GetProperty("type").GetString() == "v1.job_submitted").ShouldBe(1);
                events.EnumerateArray().Count(e => e.GetProperty("type").GetString() is "v1.job_succeeded" or "v1.job_failed").ShouldBe(1);
            }

            var newLeader = (await js.GetStreamAsync(NatsTopology.EventsStream)).Info.Cluster?.Leader;
            newLeader.ShouldNotBe(leader);
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Idle_processors_in_another_region_take_the_backlog_over_the_gateway_and_stop_when_it_recovers()
    {
        var (east, west) = await StartEastAndWestAsync();
        try
        {
            // The API and the projections in east, where the streams live; a processor only in west.
            var schema = TestEnvironment.NewSchema();
            await using var api = new PipelineHost(east[0].Url, schema, "api,projections", new Dictionary<string, string?> { ["Submit:Region"] = "east" });
            using var client = api.CreateClient();
            const int Threshold = 5;
            await using var westProcessor = new PipelineHost(west[0].Url, schema, "processor", new Dictionary<string, string?>
            {
                ["Processor:Region"] = "west",
                ["Processor:WorkerId"] = "west-1",
                ["Processor:Slots"] = "2",
                ["Processor:FaultInjection"] = "true",
                ["Processor:Scheduling:OverflowThreshold"] = $"{Threshold}",
                ["Processor:Scheduling:OverflowAfter"] = "01:00:00",
            });
            _ = westProcessor.Server;

            var jobs = new List<Guid>();
            for (var i = 0; i < 20; i++)
            {
                var job = await client.SubmitAsync(Scenarios.MlpJob([i, 0, 0, 0], """{"cqrsi-test-fault":"sleep:100"}"""));
                job.Status.ShouldBe(HttpStatusCode.Accepted);
                jobs.Add(job.Id);
            }

            // West takes east's jobs while at least the threshold wait, then leaves the rest home.
            var ran = await Retry.Until(
                "west to work east's backlog down below the threshold",
                async () => await StatusesAsync(client, jobs),
                all => all.Count(j => j.Status == "succeeded") >= 20 - Threshold + 1 && all.All(j => j.Status is "succeeded" or "queued"),
                TimeSpan.FromSeconds(60));
            await Task.Delay(TimeSpan.FromSeconds(2));
            var settled = await StatusesAsync(client, jobs);
            settled.ShouldBe(ran, "overflow stopped once the backlog was below the threshold");
            settled.Count(j => j.Status == "queued").ShouldBeInRange(Threshold - 2, Threshold - 1);
            settled.Where(j => j.Status == "succeeded").ShouldAllBe(j => j.RanInRegion == "west" && j.Overflowed);

            // East gets a processor of its own: the rest run at home.
            await using var eastProcessor = new PipelineHost(east[0].Url, schema, "processor", new Dictionary<string, string?>
            {
                ["Processor:Region"] = "east",
                ["Processor:WorkerId"] = "east-1",
                ["Processor:FaultInjection"] = "true",
            });
            _ = eastProcessor.Server;
            foreach (var job in settled.Where(j => j.Status == "queued"))
            {
                var done = await client.WaitForStatusAsync(job.Id, "succeeded", TimeSpan.FromSeconds(30));
                done.GetProperty("ranInRegion").GetString().ShouldBe("east");
                done.GetProperty("overflowed").GetBoolean().ShouldBeFalse();
            }
        }
        finally
        {
            foreach (var server in east.Concat(west))
            {
                await server.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task An_interactive_job_runs_in_its_own_region_when_a_processor_is_there_and_over_the_gateway_when_not()
    {
        var (east, west) = await StartEastAndWestAsync();
        try
        {
            // The API in east knows both regions; processors come and go in each.
            var schema = TestEnvironment.NewSchema();
            await using var api = new PipelineHost(east[0].Url, schema, "api,projections", new Dictionary<string, string?>
            {
                ["Submit:Region"] = "east", ["Submit:Regions:0"] = "east", ["Submit:Regions:1"] = "west",
            });
            using var client = api.CreateClient();
            await using var westProcessor = RegionProcessor(west[0].Url, schema, "west");
            _ = westProcessor.Server;

            var overGateway = await Retry.Until("west to serve east's interactive job over the gateway", () => client.InferAsync([1, 0, 0, 0], wait: "3s"), ServedIn("west"));
            overGateway.Body.GetProperty("region").GetString().ShouldBe("east");

            var eastProcessor = RegionProcessor(east[0].Url, schema, "east");
            _ = eastProcessor.Server;
            await Retry.Until("east to serve its own interactive job", () => client.InferAsync([2, 0, 0, 0], wait: "3s"), ServedIn("east"));

            // East's processors stop: its interactive jobs go to west at once.
            await eastProcessor.DisposeAsync();
            var failedOver = await client.InferAsync([3, 0, 0, 0], wait: "10s");
            ServedIn("west")(failedOver).ShouldBeTrue(failedOver.Body.ToString());
            await Retry.Until("the jobs to be recorded once each", () => client.RecordedCountsAsync(failedOver.Id), c => c == (1, 1));
        }
        finally
        {
            foreach (var server in east.Concat(west))
            {
                await server.DisposeAsync();
            }
        }
    }

    private static PipelineHost RegionProcessor(string url, string schema, string region) => new(url, schema, "processor", new Dictionary<string, string?>
    {
        ["Processor:Region"] = region,
        ["Processor:WorkerId"] = $"{region}-1",
        ["Processor:Models:0"] = "mlp-test",
    });

    private static Func<SubmittedJob, bool> ServedIn(string region) => job =>
        job.Status == HttpStatusCode.OK
        && job.Body.GetProperty("servedBy").GetString() == "interactive"
        && job.Body.GetProperty("ranInRegion").GetString() == region;

    private sealed record JobSeen(Guid Id, string Status, string? RanInRegion, bool Overflowed);

    private static async Task<List<JobSeen>> StatusesAsync(HttpClient client, IEnumerable<Guid> jobs)
    {
        var seen = new List<JobSeen>();
        foreach (var id in jobs)
        {
            var job = await client.GetJobAsync(id);
            seen.Add(new JobSeen(
                id,
                job.GetProperty("status").GetString()!,
                job.GetProperty("ranInRegion").ValueKind == JsonValueKind.String ? job.GetProperty("ranInRegion").GetString() : null,
                job.GetProperty("overflowed").GetBoolean()));
        }

        return seen;
    }

    /// <summary>
    /// Two one-server regions joined by gateways. Their gateway ports are chosen together and chosen
    /// again, with both regions started again, when one was taken meanwhile (a full run once found
    /// west's gateway port bound by another process, and a retry of west alone kept that port).
    /// </summary>
    private static Task<(IReadOnlyList<NatsServerProcess> East, IReadOnlyList<NatsServerProcess> West)> StartEastAndWestAsync() =>
        NatsServerProcess.WithFreshPortsAsync<(IReadOnlyList<NatsServerProcess>, IReadOnlyList<NatsServerProcess>)>(async () =>
        {
            var (eastGateway, westGateway) = (NatsServerProcess.FreePort(), NatsServerProcess.FreePort());
            var east = await NatsServerProcess.StartClusterAsync("east", 1, eastGateway, new Dictionary<string, int> { ["west"] = westGateway });
            try
            {
                return (east, await NatsServerProcess.StartClusterAsync("west", 1, westGateway, new Dictionary<string, int> { ["east"] = eastGateway }));
            }
            catch
            {
                foreach (var server in east)
                {
                    await server.DisposeAsync();
                }

                throw;
            }
        });
}
