using Marten;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CqrsInference.Projections.Recording;

/// <summary>
/// What both recorders (jobs and edge sites) need before they record: to be the only one doing it
/// (a PostgreSQL advisory lock held for the recorder's lifetime) and where they stopped (the
/// checkpoint stored with every batch).
/// </summary>
internal static partial class RecorderLeadership
{
    /// <summary>Waits until this process holds the lock named <paramref name="key"/>; disposing the result releases it.</summary>
    public static async Task<IAsyncDisposable> AcquireAsync(string connectionString, string key, ILogger logger, CancellationToken ct)
    {
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand("select pg_try_advisory_lock(hashtext($1))", connection);
        command.Parameters.AddWithValue(key);
        var standby = false;
        while (!(bool)(await command.ExecuteScalarAsync(ct))!)
        {
            if (!standby)
            {
                LogStandby(logger, key);
                standby = true;
            }

            await Task.Delay(TimeSpan.FromSeconds(2), ct);
        }

        return connection;
    }

    /// <summary>The last log sequence recorded under <paramref name="checkpointId"/>, or 0.</summary>
    public static async Task<ulong> LoadCheckpointAsync(IDocumentStore store, string checkpointId, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        return (await session.LoadAsync<RecorderCheckpoint>(checkpointId, ct))?.Sequence ?? 0;
    }

    [LoggerMessage(LogLevel.Information, "Another recorder holds the lock {Key}; standing by")]
    private static partial void LogStandby(ILogger logger, string key);
}
