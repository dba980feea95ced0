using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Projections.Analytics;
using CqrsInference.Tests.Edge;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using CqrsInference.Tests.Jobs.Webhooks;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NATS.Client.Core;
using NATS.Net;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// Every background role of one host (job-log recorders, edge recorder, async daemon, audit sealer,
/// processor reaper, retention, webhook dispatcher, processor) comes through a PostgreSQL
/// stop/start and then a nats-server stop/start, each a real server process of the test's own,
/// and does its work after each: a webhook delivered for a job that finished after the outage, an
/// edge site's item recorded, the job's events sealed and counted by the roll-ups, a round of
/// reaping and of retention done; no role is left unavailable, none of their loops ended, and the
/// host is not stopping.
/// </summary>
public sealed class RoleSurvivalTests : IAsyncLifetime
{
    private const string Site = "site1";
    private readonly int _leafPort = NatsServerProcess.FreePort();
    private readonly int _webhookPort = NatsServerProcess.FreePort();
    private NatsServerProcess _core = null!;
    private NatsServerProcess _edge = null!;
    private PostgresProcess _postgres = null!;
    private PipelineHost _host = null!;
    private HttpClient _client = null!;
    private WebhookReceiver _receiver = null!;
    private int _items;

    /// <summary>The roles whose rounds the test can only see through their watches (they have nothing else to show for a round).</summary>
    private static readonly string[] RoundRoles = ["audit sealer", "processor reaper", "retention"];

    /// <summary>The background services that must still be running after every outage.</summary>
    private static readonly string[] Loops = ["JobLogRecorder", "EdgeRecorder", "AuditSealer", "ProcessorReaper", "JobRetention", "WebhookDispatcher", "ProcessorService"];

    public async Task InitializeAsync()
    {
        _receiver = new WebhookReceiver(_webhookPort);
        _postgres = await PostgresProcess.StartAsync();
        _core = await NatsServerProcess.StartWithConfigAsync((port, dir) => $$"""
            listen: "127.0.0.1:{{port}}"
            jetstream { store_dir: "{{dir}}/js" }
            leafnodes { listen: "127.0.0.1:{{_leafPort}}" }
            {{NatsServerProcess.Mappings}}
            """);
        _edge = await NatsServerProcess.StartWithConfigAsync((port, dir) => $$"""
            server_name: "{{Site}}-edge"
            listen: "127.0.0.1:{{port}}"
            jetstream { store_dir: "{{dir}}/js", domain: "{{Site}}" }
            leafnodes { remotes [ { url: "nats-leaf://127.0.0.1:{{_leafPort}}" } ], reconnect: 1 }
            """);
        _host = new PipelineHost(_core.Url, TestEnvironment.NewSchema(), "api,processor,projections", new Dictionary<string, string?>
        {
            ["ConnectionStrings:Postgres"] = _postgres.ConnectionString,
            ["Edge:Sites:0:Name"] = Site,
            ["Webhooks:SigningKey"] = PipelineWithWebhooks.SigningKey,
            ["Webhooks:AllowedInsecureHosts:0"] = $"127.0.0.1:{_webhookPort}",
            ["Audit:SealInterval"] = "00:00:00.200",
            ["Analytics:ProcessorTimeout"] = "00:00:03",
            ["Processor:HeartbeatInterval"] = "00:00:01",
            ["Submit:DurableWithin"] = "00:00:03",

            // Retention as short as its rule allows (over the log's age), rounds every 200 ms.
            ["Topology:EventsMaxAge"] = "00:01:00",
            ["Topology:DuplicateWindow"] = "00:00:30",
            ["Retention:FinishedJobsAfter"] = "00:01:00.001",
            ["Retention:Interval"] = "00:00:00.200",
        });
        _client = _host.CreateClient();
        _client.DefaultRequestHeaders.Authorization = new("Bearer", TestEnvironment.OperatorKey);
    }

    public async Task DisposeAsync()
    {
        _client?.Dispose();
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        foreach (var server in new IAsyncDisposable?[] { _edge, _core, _postgres })
        {
            if (server is not null)
            {
                await server.DisposeAsync();
            }
        }

        _receiver?.Dispose();
    }

    [Fact]
    public async Task Every_role_comes_through_a_postgres_and_a_nats_restart_and_does_its_work_after_each()
    {
        await EveryRoleWorksAsync(since: DateTimeOffset.MinValue, jobs: 1);

        await _postgres.StopAsync();
        await Retry.Until("the roles on PostgreSQL to notice it is away", () => Task.FromResult(Unavailable()),
            down => down.Contains("audit sealer") && down.Contains("recorder_0"));
        await _postgres.StartAgainAsync();
        await EveryRoleWorksAsync(since: DateTimeOffset.UtcNow, jobs: 2);

        await _core.StopProcessAsync();
        await Retry.Until("the host to lose its NATS connection", () => Task.FromResult(_host.Services.GetRequiredService<INatsConnection>().ConnectionState),
            state => state != NatsConnectionState.Open);

        // Down for a while (a submit waits Submit:DurableWithin for JetStream, then answers 503), so
        // the roles' calls fail meanwhile. The 503 says the job may or may not be stored (the client
        // sends what it buffered once NATS is back): sent again with its key, as the 503 asks, it is
        // one job either way (a full run counted it once the test had assumed it lost).
        const string key = "role-survival-during-the-nats-outage";
        (await _client.SubmitAsync(Scenarios.MlpJob([0, 0, 0, 0]), key)).Status.ShouldBe(HttpStatusCode.ServiceUnavailable);
        await _core.StartProcessAsync();
        var again = await Retry.Until("the API to take the job again", () => _client.SubmitAsync(Scenarios.MlpJob([0, 0, 0, 0]), key),
            j => j.Status is HttpStatusCode.Accepted or HttpStatusCode.OK, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(500));
        await _client.WaitForStatusAsync(again.Id, "succeeded", TimeSpan.FromSeconds(90));
        await EveryRoleWorksAsync(since: DateTimeOffset.UtcNow, jobs: 4);
    }

    /// <summary>The roles that cannot work now (their watch says an outage lasts).</summary>
    private List<string> Unavailable() =>
        _host.Services.GetRequiredService<OutageWatches>().All.Where(w => w.FailingSince is not null).Select(w => w.Role).ToList();

    /// <summary>
    /// A new job with a webhook and a new edge item, after <paramref name="since"/>: every role does
    /// its part, and comes back; <paramref name="jobs"/> is how many jobs the test has had succeed.
    /// </summary>
    private async Task EveryRoleWorksAsync(DateTimeOffset since, int jobs)
    {
        // Processor, job-log recorders and webhook dispatcher: the job runs, is recorded, and its webhook is called after the outage.
        var job = await Retry.Until("the API to take a job", () => _client.SubmitAsync(
            Scenarios.MlpJob([jobs, 2, 3, 4]).TrimEnd('}') + $",\"webhook\":{JsonSerializer.Serialize(_receiver.Url)}}}"),
            j => j.Status == HttpStatusCode.Accepted, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(500));
        await _client.WaitForStatusAsync(job.Id, "succeeded", TimeSpan.FromSeconds(90));
        await Retry.Until($"the webhook of job {job.Id} to be delivered", () => Task.FromResult(_receiver.Calls.ToList()),
            calls => calls.Any(c => c.Status == 200 && c.Body.Contains(job.Id.ToString(), StringComparison.Ordinal) && c.At > since),
            TimeSpan.FromSeconds(90));

        // Edge recorder: an item the site stored after the outage is recorded in the core.
        await PublishEdgeItemAsync();
        await WaitForCoreItemsAsync(_items);

        // Sealer and async daemon: every event sealed, every job counted by the usage roll-up.
        await Retry.Until("the sealer to seal every event", () => _client.GetFromJsonAsync<JsonElement>("/v1/audit/verify"),
            report => report.GetProperty("intact").GetBoolean() && report.GetProperty("unsealedEvents").GetInt64() == 0, TimeSpan.FromSeconds(60));
        var now = DateTimeOffset.UtcNow;
        var range = $"from={Uri.EscapeDataString(now.AddHours(-1).ToString("O"))}&to={Uri.EscapeDataString(now.AddHours(1).ToString("O"))}";
        await Retry.Until("the usage roll-up to count every job", () => _client.GetFromJsonAsync<JsonElement>($"/v1/analytics/usage?{range}&groupBy=tenant"),
            rows => rows.EnumerateArray().Sum(r => r.GetProperty("succeeded").GetInt64()) == jobs, TimeSpan.FromSeconds(60));

        // Reaper and retention: a whole round done against the servers after the outage.
        var watches = _host.Services.GetRequiredService<OutageWatches>();
        await Retry.Until("the reaper and retention to do a round", () => Task.FromResult(RoundRoles.Where(r => !(watches.For(r).LastWorked > since)).ToList()),
            late => late.Count == 0, TimeSpan.FromSeconds(60));

        // No role is left unavailable, no loop ended, and the host is not stopping.
        await Retry.Until("every role to be available", () => Task.FromResult(string.Join(", ", Unavailable())), down => down.Length == 0, TimeSpan.FromSeconds(60));
        var loops = _host.Services.GetServices<IHostedService>().OfType<BackgroundService>().Where(s => Loops.Contains(s.GetType().Name)).ToList();
        loops.Select(s => s.GetType().Name).Distinct().ShouldBe(Loops, ignoreOrder: true);
        loops.Where(s => s.ExecuteTask is not { IsCompleted: false }).Select(s => $"{s.GetType().Name}: {s.ExecuteTask?.Status}").ShouldBeEmpty();
        _host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested.ShouldBeFalse();
    }

    /// <summary>What the site's processor would store for one item (its stream created first), on the site's own server.</summary>
    private async Task PublishEdgeItemAsync()
    {
        await using var site = new NatsClient(_edge.Url);
        var js = site.CreateJetStreamContext();
        await EdgeTopology.EnsureSiteAsync(js, Site, TimeSpan.FromMinutes(2), TimeSpan.FromHours(1), CancellationToken.None);
        _items++;
        await EdgeTopology.PublishAsync(js, new V1.EdgeItemProcessed(Site, $"item-{_items:D4}.wav", "wav", 1000, 0, 0, 0.001, DateTimeOffset.UtcNow), "items", CancellationToken.None);
    }

    private Task WaitForCoreItemsAsync(int count) => _host.WaitForCoreItemsAsync(Site, count, TimeSpan.FromSeconds(60));
}
