using CqrsInference.Projections.Recording;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CqrsInference.Tests.Recording;

/// <summary>
/// The recorder's lease on real PostgreSQL: its lock's session killed (as a PostgreSQL restart or
/// a network cut would), the holder learns it has lost the lock, a successor wins the next term,
/// and from then on nothing the old holder writes commits.
/// </summary>
public sealed class RecorderLeaseTests : IAsyncLifetime
{
    private readonly string _schema = TestEnvironment.NewSchema();
    private NpgsqlDataSource _db = null!;

    public async Task InitializeAsync()
    {
        _db = NpgsqlDataSource.Create(TestEnvironment.Postgres);
        await _db.CreateCommand($"create schema if not exists {_schema}").ExecuteNonQueryAsync();
    }

    public async Task DisposeAsync()
    {
        await _db.CreateCommand($"drop schema if exists {_schema} cascade").ExecuteNonQueryAsync();
        await _db.DisposeAsync();
    }

    [Fact]
    public async Task A_holder_whose_lock_session_dies_learns_it_and_its_writes_are_refused_once_a_successor_leads()
    {
        var key = $"test-recorder:{_schema}";
        await using var first = await RecorderLease.AcquireAsync(TestEnvironment.Postgres, _schema, key, NullLogger.Instance, CancellationToken.None);
        await FencedWriteAsync(first.Fence);

        // A second process stands by while the first holds the lock.
        using var waiting = new CancellationTokenSource();
        var second = RecorderLease.AcquireAsync(TestEnvironment.Postgres, _schema, key, NullLogger.Instance, waiting.Token);
        await Task.Delay(TimeSpan.FromSeconds(1));
        second.IsCompleted.ShouldBeFalse("the lock is held");

        // The first holder's lock session dies.
        await _db.CreateCommand($"select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and granted and objid = hashtext('{key}')::oid").ExecuteNonQueryAsync();

        await using var successor = await second.WaitAsync(TimeSpan.FromSeconds(20));
        successor.Fence.Term.ShouldBe(first.Fence.Term + 1);
        await Retry.Until("the first holder to learn it lost the lock", () => Task.FromResult(first.Lost.IsCancellationRequested), lost => lost, TimeSpan.FromSeconds(10));

        var refused = await Should.ThrowAsync<PostgresException>(() => FencedWriteAsync(first.Fence));
        RecorderFence.Refused(refused).ShouldBeTrue(refused.Message);
        await FencedWriteAsync(successor.Fence);
    }

    /// <summary>A write as a recorder makes one: the fence and a row, in one transaction.</summary>
    private async Task FencedWriteAsync(RecorderFence fence)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(fence.Sql) { Parameters = { new() { Value = fence.Key }, new() { Value = fence.Term } } },
                new NpgsqlBatchCommand($"create table if not exists {_schema}.writes (term bigint)"),
                new NpgsqlBatchCommand($"insert into {_schema}.writes values ({fence.Term})"),
            },
        };
        await batch.ExecuteNonQueryAsync();
    }
}
