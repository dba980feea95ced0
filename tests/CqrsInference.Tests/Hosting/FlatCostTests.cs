using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;
using CqrsInference.Tests.Infrastructure;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// What the system does periodically and per request costs the same whatever the history: with a
/// few thousand events in the store, a whole host life (start, gauges, sealer, daemon, reaper) plus
/// many calls of /health, /metrics, /v1/analytics/lag and GET /v1/jobs/{id} reads the event tables
/// only by index, a bounded number of rows, and never scans them. PostgreSQL's own counters
/// (pg_stat_user_tables of this class's schema) are the witness; a host's counters are flushed when
/// its connections end, so each measured host runs under an application name of its own and the
/// test waits for its last connection to close before it reads them.
/// </summary>
public sealed class FlatCostTests : IAsyncLifetime
{
    private const int HistoryJobs = 1500;
    private const int Calls = 40;

    /// <summary>Each round calls /health, /metrics, /v1/analytics/lag and GET /v1/jobs/{id}.</summary>
    private const int Requests = Calls * 4;

    /// <summary>
    /// Rows of an event table a host may fetch by index per request, averaged over its whole life (its
    /// background work included: heartbeats recorded, rolled up and sealed): a constant, far below the history.
    /// </summary>
    private const int RowsPerRequest = 2;

    /// <summary>Usage, utilization and edge activity: each reports its progress once it has run.</summary>
    private const int AsyncRollUps = 4; // usage, processor usage, edge site activity, shadow comparison
    private readonly string _schema = TestEnvironment.NewSchema();
    private NatsServerProcess _nats = null!;

    private string ApplicationName => "cost_" + _schema;

    private string Postgres => new NpgsqlConnectionStringBuilder(TestEnvironment.Postgres) { ApplicationName = ApplicationName }.ConnectionString;

    public async Task InitializeAsync() => _nats = await NatsServerProcess.StartAsync();

    public async Task DisposeAsync() => await _nats.DisposeAsync();

    [Fact]
    public async Task Health_metrics_lag_and_a_job_read_the_event_tables_by_index_only_and_a_bounded_number_of_rows()
    {
        Guid job;
        await using (var loading = StartHost())
        {
            job = await LoadHistoryAsync(loading);
            await WaitSettledAsync(loading);
        }

        await WaitForConnectionsClosedAsync();
        var before = await TableStatsAsync();

        await using (var measured = StartHost())
        {
            using var client = measured.CreateClient();
            client.DefaultRequestHeaders.Authorization = new("Bearer", TestEnvironment.OperatorKey);
            await Retry.Until("the gauges to have been refreshed", () => client.GetStringAsync("/metrics"), m => m.Contains("cqrsi_projection_lag", StringComparison.Ordinal));
            for (var i = 0; i < Calls; i++)
            {
                foreach (var path in new[] { "/health", "/metrics", "/v1/analytics/lag", $"/v1/jobs/{job}" })
                {
                    using var response = await client.GetAsync(path);
                    response.StatusCode.ShouldBe(HttpStatusCode.OK, path);
                }
            }
        }

        await WaitForConnectionsClosedAsync();
        var after = await TableStatsAsync();
        foreach (var table in new[] { "mt_events", "mt_streams" })
        {
            var (scans, scanned, fetched) = (after[table].SeqScan - before[table].SeqScan, after[table].SeqTupRead - before[table].SeqTupRead, after[table].IdxTupFetch - before[table].IdxTupFetch);
            scans.ShouldBe(0, $"{table}: {scans} sequential scans reading {scanned} rows in one host life and {Calls} rounds of calls, with {HistoryJobs * 3} events stored");
            fetched.ShouldBeLessThanOrEqualTo(RowsPerRequest * Requests, $"{table}: {fetched} rows fetched by index in one host life and {Requests} requests, with {HistoryJobs * 3} events stored");
        }
    }

    private PipelineHost StartHost()
    {
        var host = new PipelineHost(_nats.Url, _schema, "api,processor,projections", new Dictionary<string, string?>
        {
            ["ConnectionStrings:Postgres"] = Postgres,
            ["Audit:SealInterval"] = "00:00:00.200",
        });
        _ = host.Server;
        return host;
    }

    /// <summary>Jobs of 3 events each, straight into the store, with their status documents; returns one of them.</summary>
    private static async Task<Guid> LoadHistoryAsync(PipelineHost host)
    {
        var store = host.Services.GetRequiredService<IDocumentStore>();
        var at = DateTimeOffset.UtcNow.AddDays(-1);
        var context = new JobContext("default", "mlp-test", "local", "cpu");
        var ids = new List<Guid>();
        await using var session = store.LightweightSession();
        for (var i = 0; i < HistoryJobs; i++)
        {
            var id = Guid.NewGuid();
            var submitted = new V1.JobSubmitted(id, "default", "mlp-test", "1", "local", "batch", at, "digest", 100, null);
            var started = new V1.JobStarted(id, 1, "gpu-0", "cpu", at.AddMilliseconds(5), 5, context);
            var succeeded = new V1.JobSucceeded(id, 1, "gpu-0", "cpu", at.AddMilliseconds(9), 4, 1, [], null, context);
            session.Events.StartStream<JobStatus>(id, submitted, started, succeeded);
            session.Store(JobStatusProjection.Apply(succeeded, JobStatusProjection.Apply(started, JobStatusProjection.Create(submitted))));
            ids.Add(id);
        }

        await session.SaveChangesAsync();
        await using var analyze = host.Services.GetRequiredService<NpgsqlDataSource>().CreateCommand($"analyze {host.Schema}.mt_events; analyze {host.Schema}.mt_streams");
        await analyze.ExecuteNonQueryAsync();
        return ids[HistoryJobs / 2];
    }

    /// <summary>Every roll-up caught up and every event sealed, so the measured host starts on a settled store.</summary>
    private async Task WaitSettledAsync(PipelineHost host)
    {
        using var client = host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", TestEnvironment.OperatorKey);
        await Retry.Until("the roll-ups to catch up", () => client.GetFromJsonAsync<JsonElement>("/v1/analytics/lag"),
            lag => lag.GetProperty("highestSequence").GetInt64() >= HistoryJobs * 3
                && lag.GetProperty("projections").GetArrayLength() == AsyncRollUps
                && lag.GetProperty("projections").EnumerateArray().All(p => p.GetProperty("behind").GetInt64() == 0), TimeSpan.FromSeconds(60));
        await Retry.Until("every event to be sealed", () => ScalarAsync($"select count(*) from {_schema}.cqrsi_audit_seal"), n => n >= HistoryJobs * 3, TimeSpan.FromSeconds(60));
    }

    /// <summary>A backend flushes its table counters as it exits: wait until every connection of the hosts has.</summary>
    private async Task WaitForConnectionsClosedAsync()
    {
        NpgsqlConnection.ClearPool(new NpgsqlConnection(Postgres));
        await Retry.Until("the host's connections to close", () => ScalarAsync($"select count(*) from pg_stat_activity where application_name = '{ApplicationName}'"), n => n == 0);
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(TestEnvironment.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    private sealed record TableStats(long SeqScan, long SeqTupRead, long IdxTupFetch);

    private async Task<Dictionary<string, TableStats>> TableStatsAsync()
    {
        await using var connection = new NpgsqlConnection(TestEnvironment.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "select relname, seq_scan, seq_tup_read, coalesce(idx_tup_fetch, 0) from pg_stat_user_tables where schemaname = $1 and relname in ('mt_events', 'mt_streams')", connection);
        command.Parameters.AddWithValue(_schema);
        await using var reader = await command.ExecuteReaderAsync();
        var stats = new Dictionary<string, TableStats>();
        while (await reader.ReadAsync())
        {
            stats[reader.GetString(0)] = new TableStats(reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3));
        }

        return stats;
    }
}
