using Npgsql;

namespace CqrsInference.Projections.Audit;

/// <summary>The first broken link of the chains, named by the event it concerns.</summary>
public sealed record BrokenLink(long SealIndex, long Sequence, Guid StreamId, long Version, string Problem);

public sealed record VerifyReport(bool Intact, long SealsChecked, long UnsealedEvents, string ChainHead, BrokenLink? FirstBroken);

/// <summary>Recomputes every seal from the events as they are now and reports the first difference.</summary>
public sealed class AuditVerifier(AuditOptions options)
{
    public async Task<VerifyReport> VerifyAsync(CancellationToken ct)
    {
        await using var db = NpgsqlDataSource.Create(options.ConnectionString);
        await AuditSealer.EnsureTableAsync(db, options.Schema, ct);
        var table = AuditChain.Table(options.Schema);
        await using var connection = await db.OpenConnectionAsync(ct);

        long unsealed;
        await using (var count = new NpgsqlCommand(
            $"select count(*) from {options.Schema}.mt_events e where not exists (select 1 from {table} s where s.seq_id = e.seq_id)", connection))
        {
            unsealed = (long)(await count.ExecuteScalarAsync(ct))!;
        }

        await using var command = new NpgsqlCommand(
            $"""
            select s.seal_index, s.seq_id, s.stream_id, s.version, s.event_hash, s.stream_hash, s.chain_hash,
                   e.seq_id is not null, e.stream_id, e.version, e.type, e.timestamp, e.data::text
            from {table} s left join {options.Schema}.mt_events e on e.seq_id = s.seq_id
            order by s.seal_index
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var chain = AuditChain.Genesis;
        var streams = new Dictionary<Guid, byte[]>();
        long checkedSeals = 0;
        while (await reader.ReadAsync(ct))
        {
            var (index, sequence, stream, version) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetGuid(2), reader.GetInt64(3));
            var (sealedEvent, sealedStream, sealedChain) = ((byte[])reader[4], (byte[])reader[5], (byte[])reader[6]);
            BrokenLink Broken(string problem) => new(index, sequence, stream, version, problem);

            if (index != checkedSeals + 1)
            {
                return Report(Broken($"seal {checkedSeals + 1} is missing from the audit table"));
            }

            if (!reader.GetBoolean(7))
            {
                return Report(Broken($"event {sequence} (job {stream}, version {version}) was deleted"));
            }

            var (actualStream, actualVersion) = (reader.GetGuid(8), reader.GetInt64(9));
            if (actualStream != stream || actualVersion != version)
            {
                return Report(Broken($"event {sequence} was moved: sealed as job {stream} version {version}, now job {actualStream} version {actualVersion}"));
            }

            var eventHash = AuditChain.EventHash(sequence, actualStream, actualVersion, reader.GetString(10), await reader.GetFieldValueAsync<DateTimeOffset>(11, ct), reader.GetString(12));
            if (!eventHash.AsSpan().SequenceEqual(sealedEvent))
            {
                return Report(Broken($"event {sequence} (job {stream}, version {version}) was altered after it was sealed"));
            }

            var streamHash = AuditChain.Link(streams.GetValueOrDefault(stream, AuditChain.Genesis), eventHash);
            chain = AuditChain.Link(chain, eventHash);
            if (!streamHash.AsSpan().SequenceEqual(sealedStream) || !chain.AsSpan().SequenceEqual(sealedChain))
            {
                return Report(Broken($"the seal of event {sequence} (job {stream}, version {version}) does not chain to the seal before it"));
            }

            streams[stream] = streamHash;
            checkedSeals++;
        }

        return Report(null);

        VerifyReport Report(BrokenLink? broken) =>
            new(broken is null, checkedSeals, unsealed, Convert.ToHexStringLower(chain), broken);
    }
}
