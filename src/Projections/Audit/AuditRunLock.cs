using Npgsql;

namespace CqrsInference.Projections.Audit;

/// <summary>A replay or verify was asked for while one was running; the caller gets 409 (or exit code 2).</summary>
public sealed class AuditRunBusyException(string operation, DateTimeOffset? startedAt)
    : InvalidOperationException(startedAt is { } at
        ? $"A {operation} is already running, started at {at.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}; try again when it has finished."
        : $"A {operation} is already running; try again when it has finished.")
{
    public string Operation => operation;

    public DateTimeOffset? StartedAt => startedAt;
}

/// <summary>
/// Single flight for the expensive audit runs (replay, verify): one at a time per schema, across
/// every process sharing the database (API replicas and the command line). A PostgreSQL session
/// advisory lock is held for the run on a connection of its own, outside every pool, so closing it
/// releases the lock, also when the process dies; a pooled connection could go back to its pool
/// still holding it.
/// </summary>
internal static class AuditRunLock
{
    private const string Space = "cqrsi-audit-run";

    /// <summary>Takes the lock for <paramref name="operation"/> or throws <see cref="AuditRunBusyException"/>; disposing the result releases it.</summary>
    public static async Task<IAsyncDisposable> EnterAsync(AuditOptions options, string operation, CancellationToken ct)
    {
        var key = $"{options.Schema}:{operation}";
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(options.ConnectionString) { Pooling = false }.ConnectionString);
        try
        {
            await connection.OpenAsync(ct);
            await using var take = new NpgsqlCommand($"select pg_try_advisory_lock(hashtext('{Space}'), hashtext($1))", connection);
            take.Parameters.AddWithValue(key);
            if ((bool)(await take.ExecuteScalarAsync(ct))!)
            {
                return connection;
            }

            throw new AuditRunBusyException(operation, await StartedAtAsync(connection, key, ct));
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>When the holder's lock connection opened, i.e. when its run started (null if it has just ended).</summary>
    private static async Task<DateTimeOffset?> StartedAtAsync(NpgsqlConnection connection, string key, CancellationToken ct)
    {
        await using var holder = new NpgsqlCommand(
            $"""
            select a.backend_start from pg_locks l join pg_stat_activity a on a.pid = l.pid
            where l.locktype = 'advisory' and l.granted and l.objsubid = 2
              and l.database = (select oid from pg_database where datname = current_database())
              and l.classid::int = hashtext('{Space}') and l.objid::int = hashtext($1)
            """, connection);
        holder.Parameters.AddWithValue(key);
        return await holder.ExecuteScalarAsync(ct) is DateTime started ? new DateTimeOffset(started, TimeSpan.Zero) : null;
    }
}
