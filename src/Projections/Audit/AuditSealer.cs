using CqrsInference.Messaging;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace CqrsInference.Projections.Audit;

/// <summary>
/// Seals recorded events into the hash chains, off the hot path: a background loop in the
/// projections role. Events are sealed in the order they become visible (so a transaction that
/// commits late is sealed late, not reported as tampering); one sealer at a time (advisory lock).
/// A round costs what is new, not the history: the sealer keeps its own high-water mark and the
/// gaps below it (<see cref="SealFrontier"/>) and reads the event table only by its key.
/// </summary>
internal sealed partial class AuditSealer(NpgsqlDataSource db, AuditOptions options, ILogger<AuditSealer> logger, OutageWatches? watches = null) : BackgroundService
{
    /// <summary>On a process's first round, how far below the highest seal it looks for gaps a late commit may fill.</summary>
    private const long InitialLookBack = 100_000;

    /// <summary>Gaps watched at most; beyond that the lowest are given up first.</summary>
    private const int MaxWatchedGaps = 100_000;

    private readonly SemaphoreSlim _round = new(1, 1);
    private readonly SealFrontier _frontier = new(options.LateCommitWindow, InitialLookBack, MaxWatchedGaps);
    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For("audit sealer");

    public long Sealed { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // PostgreSQL away: the round is tried again with backoff (logged once); anything else is logged and retried next round.
        var outages = Retries.ThroughOutages(_watch, Outages.IsOutage);
        var ready = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var sealedNow = await outages.ExecuteAsync(
                    async ct =>
                    {
                        if (!ready)
                        {
                            await EnsureTableAsync(db, options.Schema, ct);
                            ready = true;
                        }

                        return await SealOnceAsync(ct);
                    },
                    stoppingToken);
                _watch.Worked();
                if (sealedNow == options.SealBatch)
                {
                    continue;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                LogSealFailed(logger, e.Message);
            }

            await Task.Delay(options.SealInterval, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public override void Dispose()
    {
        _round.Dispose();
        base.Dispose();
    }

    public static async Task EnsureTableAsync(NpgsqlDataSource db, string schema, CancellationToken ct)
    {
        await using var command = db.CreateCommand(AuditChain.CreateTableSql(schema));
        await command.ExecuteNonQueryAsync(ct);
    }

    private sealed record Unsealed(long Seq, Guid Stream, long Version, string Type, DateTimeOffset Timestamp, string Data);

    private sealed record Seal(long Index, long Seq, Guid Stream, long Version, byte[] EventHash, byte[] StreamHash, byte[] ChainHash);

    /// <summary>Seals the next events not yet sealed, in one transaction under the sealer's lock; returns how many.</summary>
    public async Task<int> SealOnceAsync(CancellationToken ct)
    {
        // One round at a time in this process (the background loop, a test): the frontier is this process's.
        await _round.WaitAsync(ct);
        try
        {
            return await SealRoundAsync(ct);
        }
        finally
        {
            _round.Release();
        }
    }

    private async Task<int> SealRoundAsync(CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using (var lockCommand = new NpgsqlCommand("select pg_advisory_xact_lock(hashtext($1))", connection, transaction))
        {
            lockCommand.Parameters.AddWithValue($"cqrsi-sealer:{options.Schema}");
            await lockCommand.ExecuteNonQueryAsync(ct);
        }

        var (lastIndex, highestSealed, chain) = await ReadHeadAsync(connection, transaction, ct);
        var from = _frontier.ScanFrom(highestSealed);
        var newGaps = highestSealed > from ? await ReadGapsAsync(connection, transaction, from, highestSealed, ct) : [];
        var now = DateTimeOffset.UtcNow;
        var events = await ReadUnsealedAsync(connection, transaction, highestSealed, _frontier.Probe(newGaps, now), ct);
        if (events.Count > 0)
        {
            var streamHeads = await ReadStreamHeadsAsync(connection, transaction, events.Select(e => e.Stream).Distinct().ToArray(), ct);
            await InsertAsync(connection, transaction, Chain(events, lastIndex, chain, streamHeads), ct);
        }

        await transaction.CommitAsync(ct);
        _frontier.Advance(highestSealed, newGaps, events.Select(e => e.Seq), now);
        Sealed += events.Count;
        return events.Count;
    }

    /// <summary>The seals of the events, in order: each chained to its stream's last seal and to the seal before it.</summary>
    private static List<Seal> Chain(List<Unsealed> events, long lastIndex, byte[] chain, Dictionary<Guid, byte[]> streamHeads)
    {
        var seals = new List<Seal>(events.Count);
        foreach (var e in events)
        {
            var eventHash = AuditChain.EventHash(e.Seq, e.Stream, e.Version, e.Type, e.Timestamp, e.Data);
            var streamHash = AuditChain.Link(streamHeads.GetValueOrDefault(e.Stream, AuditChain.Genesis), eventHash);
            streamHeads[e.Stream] = streamHash;
            chain = AuditChain.Link(chain, eventHash);
            seals.Add(new Seal(lastIndex + seals.Count + 1, e.Seq, e.Stream, e.Version, eventHash, streamHash, chain));
        }

        return seals;
    }

    /// <summary>The last seal (index and chain hash) and the highest sequence sealed: two index probes.</summary>
    private async Task<(long Index, long HighestSealed, byte[] Chain)> ReadHeadAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken ct)
    {
        var table = AuditChain.Table(options.Schema);
        await using var head = new NpgsqlCommand(
            $"""
            select h.seal_index, h.chain_hash, (select coalesce(max(seq_id), 0) from {table})
            from (select 1) one left join lateral (select seal_index, chain_hash from {table} order by seal_index desc limit 1) h on true
            """, connection, transaction);
        await using var reader = await head.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return await reader.IsDBNullAsync(0, ct) ? (0, 0, AuditChain.Genesis) : (reader.GetInt64(0), reader.GetInt64(2), (byte[])reader[1]);
    }

    /// <summary>The numbers in (<paramref name="from"/>, <paramref name="to"/>] without a seal, read off the seal table's sequence index.</summary>
    private async Task<List<long>> ReadGapsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long from, long to, CancellationToken ct)
    {
        await using var select = new NpgsqlCommand($"select seq_id from {AuditChain.Table(options.Schema)} where seq_id > $1 and seq_id <= $2 order by seq_id", connection, transaction);
        select.Parameters.AddWithValue(from);
        select.Parameters.AddWithValue(to);
        await using var reader = await select.ExecuteReaderAsync(ct);
        var gaps = new List<long>();
        var previous = from;
        while (await reader.ReadAsync(ct))
        {
            var sealedAt = reader.GetInt64(0);
            for (var gap = previous + 1; gap < sealedAt && gaps.Count < MaxWatchedGaps; gap++)
            {
                gaps.Add(gap);
            }

            previous = sealedAt;
        }

        return gaps;
    }

    /// <summary>
    /// The next events not sealed yet: those above the highest seal, by the event table's primary key
    /// from there on, and those that filled a watched gap (late commits), by key lookups.
    /// </summary>
    private async Task<List<Unsealed>> ReadUnsealedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long highestSealed, long[] gaps, CancellationToken ct)
    {
        await using var select = new NpgsqlCommand(
            $"""
            select e.seq_id, e.stream_id, e.version, e.type, e.timestamp, e.data::text from (
                (select * from {options.Schema}.mt_events where seq_id > $1 order by seq_id limit $3)
                union all
                (select * from {options.Schema}.mt_events where seq_id = any($2))) e
            where not exists (select 1 from {AuditChain.Table(options.Schema)} s where s.seq_id = e.seq_id)
            order by e.seq_id limit $3
            """, connection, transaction);
        select.Parameters.AddWithValue(highestSealed);
        select.Parameters.AddWithValue(gaps);
        select.Parameters.AddWithValue(options.SealBatch);
        await using var reader = await select.ExecuteReaderAsync(ct);
        var events = new List<Unsealed>();
        while (await reader.ReadAsync(ct))
        {
            events.Add(new Unsealed(reader.GetInt64(0), reader.GetGuid(1), reader.GetInt64(2), reader.GetString(3), await reader.GetFieldValueAsync<DateTimeOffset>(4, ct), reader.GetString(5)));
        }

        return events;
    }

    /// <summary>The last stream hash of each stream, to chain the new seals of the stream to.</summary>
    private async Task<Dictionary<Guid, byte[]>> ReadStreamHeadsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid[] streams, CancellationToken ct)
    {
        // One index probe per stream (stream_id, seal_index), however many seals an edge site's stream has.
        await using var heads = new NpgsqlCommand(
            $"""
            select s.id, h.stream_hash from unnest($1::uuid[]) as s(id)
            cross join lateral (select stream_hash from {AuditChain.Table(options.Schema)} where stream_id = s.id order by seal_index desc limit 1) h
            """, connection, transaction);
        heads.Parameters.AddWithValue(streams);
        await using var reader = await heads.ExecuteReaderAsync(ct);
        var result = new Dictionary<Guid, byte[]>();
        while (await reader.ReadAsync(ct))
        {
            result[reader.GetGuid(0)] = (byte[])reader[1];
        }

        return result;
    }

    private async Task InsertAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<Seal> seals, CancellationToken ct)
    {
        await using var insert = new NpgsqlCommand(
            $"""
            insert into {AuditChain.Table(options.Schema)} (seal_index, seq_id, stream_id, version, event_hash, stream_hash, chain_hash)
            select * from unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bigint[], $5::bytea[], $6::bytea[], $7::bytea[])
            """, connection, transaction);
        insert.Parameters.AddWithValue(seals.Select(s => s.Index).ToArray());
        insert.Parameters.AddWithValue(seals.Select(s => s.Seq).ToArray());
        insert.Parameters.AddWithValue(seals.Select(s => s.Stream).ToArray());
        insert.Parameters.AddWithValue(seals.Select(s => s.Version).ToArray());
        insert.Parameters.Add(new NpgsqlParameter { Value = seals.Select(s => s.EventHash).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        insert.Parameters.Add(new NpgsqlParameter { Value = seals.Select(s => s.StreamHash).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        insert.Parameters.Add(new NpgsqlParameter { Value = seals.Select(s => s.ChainHash).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        await insert.ExecuteNonQueryAsync(ct);
    }

    [LoggerMessage(LogLevel.Warning, "Sealing events into the audit chain failed: {Reason}")]
    private static partial void LogSealFailed(ILogger logger, string reason);
}
