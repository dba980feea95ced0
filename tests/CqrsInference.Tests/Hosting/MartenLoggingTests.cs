using CqrsInference.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// The shipped log levels (src/Api/appsettings.json) let the async daemon's failures through: a
/// roll-up that cannot write is logged (category <c>Marten.Events.Daemon.*</c>), not hidden by a
/// level set to quiet Marten.
/// </summary>
public sealed class MartenLoggingTests : IAsyncLifetime
{
    private readonly LogCapture _logs = new();
    private NatsServerProcess _nats = null!;

    public async Task InitializeAsync() => _nats = await NatsServerProcess.StartAsync();

    public async Task DisposeAsync() => await _nats.DisposeAsync();

    [Fact]
    public async Task A_roll_up_that_cannot_write_is_logged_with_the_shipped_levels()
    {
        var schema = TestEnvironment.NewSchema();
        await using var host = new PipelineHost(_nats.Url, schema, "api,projections")
            .WithWebHostBuilder(b => b.ConfigureLogging(l => l.AddProvider(_logs)));
        using var client = host.CreateClient();
        var db = host.Services.GetRequiredService<NpgsqlDataSource>();

        // The utilization roll-up has written its first document; then its table goes away.
        await AppendHeartbeatAsync(db, schema, "first");
        await Retry.Until("the roll-up's first document", () => CountAsync(db, $"select count(*) from {schema}.mt_doc_processorusage"), n => n > 0);
        await ExecuteAsync(db, $"drop table {schema}.mt_doc_processorusage");
        await AppendHeartbeatAsync(db, schema, "second");

        var logged = await Retry.Until(
            "the daemon's failure in the log",
            () => Task.FromResult(_logs.Entries.Where(e => e.Level >= LogLevel.Error && IsMarten(e.Category)).ToList()),
            entries => entries.Count > 0);
        logged.ShouldContain(e => e.Text.Contains("mt_doc_processorusage", StringComparison.Ordinal), string.Join("\n", logged.Select(e => $"{e.Category} {e.Level}: {e.Text}")));
    }

    private static bool IsMarten(string category) => category.StartsWith("Marten", StringComparison.Ordinal) || category.StartsWith("JasperFx", StringComparison.Ordinal);

    /// <summary>A processor's heartbeat, written as the recorder writes one (a stream of its own, the next sequence number).</summary>
    private static Task AppendHeartbeatAsync(NpgsqlDataSource db, string schema, string worker) => ExecuteAsync(
        db,
        $$"""
        with stream as (insert into {{schema}}.mt_streams (id, type, version) values (gen_random_uuid(), null, 1) returning id)
        insert into {{schema}}.mt_events (seq_id, id, stream_id, version, data, type, timestamp, tenant_id, mt_dotnet_type, is_archived)
        select nextval('{{schema}}.mt_events_sequence'), gen_random_uuid(), stream.id, 1,
               '{"workerId":"{{worker}}","region":"local","deviceClass":"cpu","slots":1,"at":"2026-01-01T00:00:00Z","onlineSeconds":1,"busySeconds":0}',
               'v1.processor_heartbeat', now(), '*DEFAULT*', null, false
        from stream
        """);

    private static async Task ExecuteAsync(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> CountAsync(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
