using Npgsql;

namespace CqrsInference.Projections;

/// <summary>
/// Facts about the event store that cost the same whatever its size: the highest sequence number
/// drawn (the event sequence's own value, never a count of the event table).
/// </summary>
public sealed class EventStoreFacts(NpgsqlDataSource db, string schema)
{
    public async Task<long> HighestSequenceAsync(CancellationToken ct)
    {
        await using var command = db.CreateCommand($"select case when is_called then last_value else 0 end from {schema}.mt_events_sequence");
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }
}
