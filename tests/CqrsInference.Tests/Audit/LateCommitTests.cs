using CqrsInference.Commands.Jobs;
using CqrsInference.Projections;
using CqrsInference.Projections.Audit;
using CqrsInference.Tests.Infrastructure;
using Marten;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CqrsInference.Tests.Audit;

/// <summary>
/// The sealer against transactions that commit out of sequence order, on a store of each test's
/// own (the sealer and verify called directly, no host): a number drawn by a transaction still open
/// is a gap the sealer watches, sealed when the transaction commits; a gap given up is counted by verify.
/// </summary>
public sealed class LateCommitTests : IAsyncLifetime
{
    private readonly string _schema = TestEnvironment.NewSchema();
    private NpgsqlDataSource _db = null!;
    private DocumentStore _store = null!;

    public async Task InitializeAsync()
    {
        _db = NpgsqlDataSource.Create(TestEnvironment.Postgres);
        _store = DocumentStore.For(o => o.Configure(TestEnvironment.Postgres, _schema));
        await _store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
        await AuditSealer.EnsureTableAsync(_db, _schema, default);
    }

    public async Task DisposeAsync()
    {
        _store.Dispose();
        await _db.DisposeAsync();
    }

    [Fact]
    public async Task A_late_commit_is_sealed_once_it_is_visible_and_verify_finds_the_chain_intact()
    {
        var options = Options(TimeSpan.FromMinutes(5));
        using var sealer = new AuditSealer(_db, options, NullLogger<AuditSealer>.Instance);
        await AppendAsync("gpu-a", 3);
        var (late, lateSequence) = await BeginLateEventAsync();
        await AppendAsync("gpu-b", 2);

        (await sealer.SealOnceAsync(default)).ShouldBe(5);
        (await sealer.SealOnceAsync(default)).ShouldBe(0);
        await late.CommitAsync();
        await late.Connection!.DisposeAsync();
        (await sealer.SealOnceAsync(default)).ShouldBe(1);

        var report = await new AuditVerifier(_db, options).VerifyAsync(default);
        report.Intact.ShouldBeTrue(report.ToString());
        report.SealsChecked.ShouldBe(6);
        report.UnsealedEvents.ShouldBe(0);
        (await ScalarAsync($"select seal_index from {_schema}.cqrsi_audit_seal where seq_id = {lateSequence}")).ShouldBe(6);
    }

    [Fact]
    public async Task A_gap_given_up_after_the_window_leaves_its_late_event_unsealed_and_verify_counts_it()
    {
        var options = Options(TimeSpan.Zero);
        using var sealer = new AuditSealer(_db, options, NullLogger<AuditSealer>.Instance);
        await AppendAsync("gpu-a", 2);
        var (late, _) = await BeginLateEventAsync();
        await AppendAsync("gpu-b", 2);
        await sealer.SealOnceAsync(default);
        await sealer.SealOnceAsync(default);
        await late.CommitAsync();
        await late.Connection!.DisposeAsync();
        await AppendAsync("gpu-c", 1);

        (await sealer.SealOnceAsync(default)).ShouldBe(1);

        var report = await new AuditVerifier(_db, options).VerifyAsync(default);
        report.Intact.ShouldBeTrue(report.ToString());
        report.SealsChecked.ShouldBe(5);
        report.UnsealedEvents.ShouldBe(1);
    }

    [Fact]
    public async Task Verify_counts_events_above_the_last_seal_and_in_holes_between_seals()
    {
        var options = Options(TimeSpan.FromMinutes(5));
        using var sealer = new AuditSealer(_db, options, NullLogger<AuditSealer>.Instance);
        await AppendAsync("gpu-a", 4);
        await sealer.SealOnceAsync(default);
        await AppendAsync("gpu-b", 3);
        var verifier = new AuditVerifier(_db, options);

        (await verifier.VerifyAsync(default)).UnsealedEvents.ShouldBe(3);

        // A seal removed by hand: verify names the break; the event it sealed is a hole now.
        await ExecuteAsync($"delete from {_schema}.cqrsi_audit_seal where seal_index = 2");
        var report = await verifier.VerifyAsync(default);
        report.Intact.ShouldBeFalse();
        report.UnsealedEvents.ShouldBe(4);
    }

    private AuditOptions Options(TimeSpan lateCommitWindow) =>
        new() { ConnectionString = TestEnvironment.Postgres, Schema = _schema, LateCommitWindow = lateCommitWindow };

    private async Task AppendAsync(string worker, int heartbeats)
    {
        await using var session = _store.LightweightSession();
        var at = DateTimeOffset.UtcNow;
        session.Events.Append(EventNames.ProcessorStreamId(worker), Enumerable.Range(0, heartbeats)
            .Select(i => (object)new V1.ProcessorHeartbeat(worker, "local", "cpu", 1, at.AddSeconds(i), 10 + i, 0)).ToArray());
        await session.SaveChangesAsync();
    }

    /// <summary>An event inserted by a transaction left open: its sequence number is drawn now, it becomes visible at commit.</summary>
    private async Task<(NpgsqlTransaction Transaction, long Sequence)> BeginLateEventAsync()
    {
        var connection = await _db.OpenConnectionAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var insert = new NpgsqlCommand(
            $"""
            insert into {_schema}.mt_events (seq_id, id, stream_id, version, data, type, timestamp, tenant_id, mt_dotnet_type, is_archived)
            select nextval('{_schema}.mt_events_sequence'), gen_random_uuid(), stream_id, version + 1000, data, type, now(), tenant_id, mt_dotnet_type, false
            from {_schema}.mt_events order by seq_id desc limit 1
            returning seq_id
            """, connection, transaction);
        return (transaction, (long)(await insert.ExecuteScalarAsync())!);
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var command = _db.CreateCommand(sql);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var command = _db.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }
}
