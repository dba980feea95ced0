using CqrsInference.Messaging;
using Marten;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CqrsInference.Projections.Recording;

/// <summary>A recorder's fencing token: its lock's name and the term it won; every write it makes checks it.</summary>
internal sealed record RecorderFence(string Schema, string Key, long Term)
{
    /// <summary>
    /// A statement that fails (division by zero, SQLSTATE 22012) unless <see cref="Term"/> is still
    /// the lock's current term, placed in each recording transaction, so that a recorder that lost
    /// its lock, and was succeeded, commits nothing more. It touches the term's row, so a successor
    /// drawing the next term waits for a transaction in flight to end: fencing without a window.
    /// It returns no rows (Marten reads results of the commands it batches).
    /// </summary>
    public string Sql => $"update {Schema}.cqrsi_recorder_term set term = term where id = $1 and 1 / (case when term = $2 then 1 else 0 end) = 1";

    /// <summary>The table of terms, one row per lock (created by <c>migrate</c>, or by the first recorder to win a lock).</summary>
    public static string CreateTableSql(string schema) => $"create table if not exists {schema}.cqrsi_recorder_term (id text primary key, term bigint not null)";

    /// <summary>Whether an exception is this check failing: another recorder has taken over.</summary>
    public static bool Refused(Exception e) => e is PostgresException { SqlState: "22012" } || e.InnerException is { } inner && Refused(inner);
}

/// <summary>
/// Who records: the one process holding a PostgreSQL advisory lock (on a connection of its own,
/// outside every pool), which learns when it loses it. On winning it draws the next term of the
/// lock (<c>cqrsi_recorder_term</c>), the fencing token its writes carry (<see cref="RecorderFence"/>):
/// when PostgreSQL restarts or the lock's session is killed, another process may win the lock
/// before this one notices, but from its term on nothing this one writes commits. A keep-alive
/// checks the lock and the term every <see cref="KeepAlive"/> (a region takeover draws a term to
/// move the checkpoints: <see cref="RecorderCheckpointMove"/>); <see cref="Lost"/> fires when it fails. Every
/// failure to reach PostgreSQL while acquiring is retried with backoff, never thrown.
/// (DistributedLock.Postgres would do the lock part, but two copies of it with one namespace, the
/// original and a patched fork, reach this project through its dependencies; the fence it has not.)
/// </summary>
internal sealed partial class RecorderLease : IAsyncDisposable
{
    public static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(1);

    private readonly NpgsqlConnection _connection;
    private readonly CancellationTokenSource _lost = new();
    private readonly Task _watch;

    private RecorderLease(NpgsqlConnection connection, RecorderFence fence, ILogger logger)
    {
        _connection = connection;
        Fence = fence;
        _watch = WatchAsync(logger);
    }

    public RecorderFence Fence { get; }

    /// <summary>Cancelled once the lock may be held by someone else.</summary>
    public CancellationToken Lost => _lost.Token;

    /// <summary>Waits until this process holds the lock <paramref name="key"/> (standing by while another does, retrying while PostgreSQL is away).</summary>
    public static async Task<RecorderLease> AcquireAsync(string connectionString, string schema, string key, ILogger logger, CancellationToken ct, OutageWatch? watch = null)
    {
        var standby = false;
        var waiting = Retries.UntilAcquired<RecorderLease>(
            poll: TimeSpan.FromSeconds(2),
            first: TimeSpan.FromSeconds(1),
            max: Retries.OutageMax,
            Outages.IsOutage,
            onHeldElsewhere: () =>
            {
                if (!standby)
                {
                    LogStandby(logger, key);
                    standby = true;
                }
            },
            onFailure: failure =>
            {
                // A role with a watch logs the outage once; else each try says so.
                if (watch is null)
                {
                    LogUnreachable(logger, key, failure.Delay.TotalSeconds, failure.Reason);
                }
                else
                {
                    watch.Failed(failure.Exception);
                }
            });
        return (await waiting.ExecuteAsync(token => TryAcquireAsync(connectionString, schema, key, logger, token), ct))!;
    }

    /// <summary>The last log sequence recorded under <paramref name="checkpointId"/>, or 0.</summary>
    public static async Task<ulong> LoadCheckpointAsync(IDocumentStore store, string checkpointId, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        return (await session.LoadAsync<RecorderCheckpoint>(checkpointId, ct))?.Sequence ?? 0;
    }

    public async ValueTask DisposeAsync()
    {
        await _lost.CancelAsync();
#pragma warning disable VSTHRD003 // The keep-alive this object started in its constructor.
        await _watch.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
#pragma warning restore VSTHRD003
        await _connection.DisposeAsync();
        _lost.Dispose();
    }

    /// <summary>The lease, or null while another session holds the lock.</summary>
    private static async ValueTask<RecorderLease?> TryAcquireAsync(string connectionString, string schema, string key, ILogger logger, CancellationToken ct)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        try
        {
            await connection.OpenAsync(ct);
            if (await TryLockAsync(connection, key, ct))
            {
                var term = await NextTermAsync(connection, schema, key, ct);
                LogLeading(logger, key, term);
                return new RecorderLease(connection, new RecorderFence(schema, key, term), logger);
            }
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }

        await connection.DisposeAsync();
        return null;
    }

    private static async Task<bool> TryLockAsync(NpgsqlConnection connection, string key, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("select pg_try_advisory_lock(hashtext($1))", connection);
        command.Parameters.AddWithValue(key);
        return (bool)(await command.ExecuteScalarAsync(ct))!;
    }

    private static async Task<long> NextTermAsync(NpgsqlConnection connection, string schema, string key, CancellationToken ct)
    {
        try
        {
            await using var create = new NpgsqlCommand(RecorderFence.CreateTableSql(schema), connection);
            await create.ExecuteNonQueryAsync(ct);
        }
        catch (PostgresException e) when (e.SqlState is "23505" or "42P07" or "42710")
        {
            // Another partition's recorder created it at the same moment ("if not exists" is no guard
            // against a concurrent create: the loser fails on the table, its row type or its index).
        }

        await using var command = new NpgsqlCommand(
            $"""
            insert into {schema}.cqrsi_recorder_term (id, term) values ($1, 1)
            on conflict (id) do update set term = cqrsi_recorder_term.term + 1 returning term
            """, connection);
        command.Parameters.AddWithValue(key);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Asks now and then whether this session still holds an advisory lock and its term is still the current one; a failure or a no means lost.</summary>
    private async Task WatchAsync(ILogger logger)
    {
        try
        {
            while (!_lost.IsCancellationRequested)
            {
                await Task.Delay(KeepAlive, _lost.Token);
                await using var command = new NpgsqlCommand(
                    $"""
                    select exists (select 1 from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and granted),
                           coalesce((select term = $2 from {Fence.Schema}.cqrsi_recorder_term where id = $1), false)
                    """,
                    _connection);
                command.Parameters.AddWithValue(Fence.Key);
                command.Parameters.AddWithValue(Fence.Term);
                await using var reader = await command.ExecuteReaderAsync(_lost.Token);
                await reader.ReadAsync(_lost.Token);
                if (!reader.GetBoolean(0))
                {
                    throw new InvalidOperationException("the session no longer holds the lock");
                }

                if (!reader.GetBoolean(1))
                {
                    // A later term was drawn without the lock (a region takeover moving the checkpoint): lead again from it.
                    throw new InvalidOperationException("a later term was drawn (the checkpoint was moved)");
                }
            }
        }
        catch (OperationCanceledException) when (_lost.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            LogLost(logger, Fence.Key, Fence.Term, e.GetBaseException().Message);
            await _lost.CancelAsync();
        }
    }

    [LoggerMessage(LogLevel.Information, "Another recorder holds the lock {Key}; standing by")]
    private static partial void LogStandby(ILogger logger, string key);

    [LoggerMessage(LogLevel.Information, "Holding the lock {Key}, term {Term}: leading")]
    private static partial void LogLeading(ILogger logger, string key, long term);

    [LoggerMessage(LogLevel.Warning, "PostgreSQL is out of reach for the lock {Key}; trying again in {Seconds} s: {Reason}")]
    private static partial void LogUnreachable(ILogger logger, string key, double seconds, string reason);

    [LoggerMessage(LogLevel.Warning, "Lost the lock {Key} (term {Term}): recording stops until it is won again: {Reason}")]
    private static partial void LogLost(ILogger logger, string key, long term, string reason);
}
