using Npgsql;

namespace CqrsInference.Projections.Audit;

/// <summary>The first broken link of the chains, named by the event it concerns.</summary>
public sealed record BrokenLink(long SealIndex, long Sequence, Guid StreamId, long Version, string Problem);

public sealed record VerifyReport(bool Intact, long SealsChecked, long UnsealedEvents, string ChainHead, BrokenLink? FirstBroken);

/// <summary>
/// Recomputes every seal from the events as they are now and reports the first difference. One
/// verify at a time (<see cref="AuditRunLock"/>); memory stays flat however long the chains are:
/// the seals stream through one ordered query, each row carrying the stored hash of its stream's
/// previous seal (already checked, since seals are checked in order), so no per-stream state is kept.
/// </summary>
public sealed class AuditVerifier(NpgsqlDataSource db, AuditOptions options)
{
    public async Task<VerifyReport> VerifyAsync(CancellationToken ct)
    {
        await using var running = await AuditRunLock.EnterAsync(options, "verify", ct);
        await AuditSealer.EnsureTableAsync(db, options.Schema, ct);
        var table = AuditChain.Table(options.Schema);
        await using var connection = await db.OpenConnectionAsync(ct);

        // One snapshot for the count and the walk, as the single query it replaces had.
        await using var snapshot = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
        var unsealed = await CountUnsealedAsync(connection, table, ct);
        await using var command = new NpgsqlCommand(
            $"""
            select s.seal_index, s.seq_id, s.stream_id, s.version, s.event_hash, s.stream_hash, s.chain_hash, p.stream_hash,
                   e.seq_id is not null, e.stream_id, e.version, e.type, e.timestamp, e.data::text
            from {table} s left join {options.Schema}.mt_events e on e.seq_id = s.seq_id
            left join lateral (select stream_hash from {table} b where b.stream_id = s.stream_id and b.seal_index < s.seal_index order by b.seal_index desc limit 1) p on true
            order by s.seal_index
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var walk = new ChainWalk();
        while (await reader.ReadAsync(ct))
        {
            var seal = new SealRow(reader.GetInt64(0), reader.GetInt64(1), reader.GetGuid(2), reader.GetInt64(3), (byte[])reader[4], (byte[])reader[5], (byte[])reader[6],
                await reader.IsDBNullAsync(7, ct) ? AuditChain.Genesis : (byte[])reader[7]);
            var actual = reader.GetBoolean(8)
                ? new EventRow(reader.GetGuid(9), reader.GetInt64(10), reader.GetString(11), await reader.GetFieldValueAsync<DateTimeOffset>(12, ct), reader.GetString(13))
                : null;
            if (walk.Check(seal, actual) is { } broken)
            {
                return walk.Report(unsealed, broken);
            }
        }

        return walk.Report(unsealed, null);
    }

    /// <summary>
    /// Events without a seal, counted without joining the whole event table against the seals: an
    /// unsealed event can only lie in a hole of the sealed sequence numbers (or above the highest), so
    /// the holes are read off the seal table's sequence index and the events in each are counted by
    /// the event table's primary key. Costs one pass over the seal index plus a probe per hole.
    /// </summary>
    private async Task<long> CountUnsealedAsync(NpgsqlConnection connection, string table, CancellationToken ct)
    {
        await using var count = new NpgsqlCommand(
            $"""
            with marks as (
                select seq_id, lead(seq_id) over (order by seq_id) as next
                from (select 0::bigint as seq_id union all select seq_id from {table}) sealed)
            select coalesce(sum((select count(*) from {options.Schema}.mt_events e where e.seq_id > h.seq_id and (h.next is null or e.seq_id < h.next))), 0)
            from marks h where h.next is null or h.next > h.seq_id + 1
            """, connection);
        return Convert.ToInt64(await count.ExecuteScalarAsync(ct));
    }

    /// <summary>A seal, with the stored stream hash of its stream's previous seal (genesis for the first).</summary>
    private sealed record SealRow(long Index, long Sequence, Guid Stream, long Version, byte[] EventHash, byte[] StreamHash, byte[] ChainHash, byte[] PreviousStreamHash);

    private sealed record EventRow(Guid Stream, long Version, string Type, DateTimeOffset Timestamp, string Data);

    /// <summary>The chains recomputed seal by seal, in order: the first seal that does not match names what was changed.</summary>
    private sealed class ChainWalk
    {
        private byte[] _chain = AuditChain.Genesis;
        private long _checked;

        public BrokenLink? Check(SealRow seal, EventRow? actual)
        {
            BrokenLink Broken(string problem) => new(seal.Index, seal.Sequence, seal.Stream, seal.Version, problem);
            var what = $"event {seal.Sequence} (job {seal.Stream}, version {seal.Version})";
            if (seal.Index != _checked + 1)
            {
                return Broken($"seal {_checked + 1} is missing from the audit table");
            }

            if (actual is null)
            {
                return Broken($"{what} was deleted");
            }

            if (actual.Stream != seal.Stream || actual.Version != seal.Version)
            {
                return Broken($"event {seal.Sequence} was moved: sealed as job {seal.Stream} version {seal.Version}, now job {actual.Stream} version {actual.Version}");
            }

            var eventHash = AuditChain.EventHash(seal.Sequence, actual.Stream, actual.Version, actual.Type, actual.Timestamp, actual.Data);
            if (!eventHash.AsSpan().SequenceEqual(seal.EventHash))
            {
                return Broken($"{what} was altered after it was sealed");
            }

            var streamHash = AuditChain.Link(seal.PreviousStreamHash, eventHash);
            _chain = AuditChain.Link(_chain, eventHash);
            if (!streamHash.AsSpan().SequenceEqual(seal.StreamHash) || !_chain.AsSpan().SequenceEqual(seal.ChainHash))
            {
                return Broken($"the seal of {what} does not chain to the seal before it");
            }

            _checked++;
            return null;
        }

        public VerifyReport Report(long unsealed, BrokenLink? broken) => new(broken is null, _checked, unsealed, Convert.ToHexStringLower(_chain), broken);
    }
}
