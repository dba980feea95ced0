using System.Runtime.CompilerServices;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using Npgsql;

namespace CqrsInference.Projections.Audit;

/// <summary>One event of the global log, as auditors read it: raw data, exactly as recorded.</summary>
public sealed record AuditEvent(long Sequence, Guid StreamId, long Version, string Type, DateTimeOffset Timestamp, string DataJson);

/// <summary>
/// The global event feed of one tenant, in sequence order, resumable from any sequence: the events
/// of its jobs and of its batches, and those of the edge sites that <c>Edge:Sites</c> assigns to it. Always bounded: at
/// most <c>limit</c> events per call, read through the process's one connection pool. Shadow runs'
/// results (<see cref="EventNames.JobShadowResult"/>) only with <c>withShadows</c>, the platform
/// operator's: they are never returned to a tenant, whose auditor read the shadow's outputs here.
/// </summary>
public sealed class AuditFeed(NpgsqlDataSource db, AuditOptions options, EdgeOptions edge)
{
    public async IAsyncEnumerable<AuditEvent> ReadAsync(
        string tenant, long fromSequence, DateTimeOffset? from, DateTimeOffset? to, int limit, bool withShadows,
        [EnumeratorCancellation] CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            $"""
            select e.seq_id, e.stream_id, e.version, e.type, e.timestamp, e.data::text
            from {options.Schema}.mt_events e
            left join {options.Schema}.mt_doc_jobstatus j on j.id = e.stream_id
            left join {options.Schema}.mt_doc_batchstatus b on b.id = e.stream_id
            where (j.data->>'Tenant' = $1 or b.data->>'Tenant' = $1 or e.stream_id = any($6)) and e.seq_id >= $2
              and ($3::timestamptz is null or e.timestamp >= $3) and ($4::timestamptz is null or e.timestamp < $4)
              and ($7 or e.type <> $8)
            order by e.seq_id
            limit $5
            """);
        command.CommandTimeout = (int)Math.Ceiling(options.FeedCommandTimeout.TotalSeconds);
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(fromSequence);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)from ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)to ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz });
        command.Parameters.AddWithValue((long)limit);
        command.Parameters.AddWithValue(edge.Sites.Where(s => s.Tenant == tenant).Select(s => EdgeEventNames.SiteStreamId(s.Name)).ToArray());
        command.Parameters.AddWithValue(withShadows);
        command.Parameters.AddWithValue(EventNames.JobShadowResult);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            yield return new AuditEvent(reader.GetInt64(0), reader.GetGuid(1), reader.GetInt64(2), reader.GetString(3),
                await reader.GetFieldValueAsync<DateTimeOffset>(4, ct), reader.GetString(5));
        }
    }
}
