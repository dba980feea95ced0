using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace CqrsInference.Projections.Audit;

/// <summary>
/// Seals recorded events into the hash chains, off the hot path: a background loop in the
/// projections role. Events are sealed in the order they become visible (so a transaction that
/// commits late is sealed late, not reported as tampering); one sealer at a time (advisory lock).
/// </summary>
internal sealed partial class AuditSealer(NpgsqlDataSource db, AuditOptions options, ILogger<AuditSealer> logger) : BackgroundService
{
    public long Sealed { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var ready = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!ready)
                {
                    await EnsureTableAsync(db, options.Schema, stoppingToken);
                    ready = true;
                }

                var sealedNow = await SealOnceAsync(stoppingToken);
                if (sealedNow == options.SealBatch)
                {
                    continue;
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested && e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                LogSealFailed(logger, e.Message);
            }

            await Task.Delay(options.SealInterval, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
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
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using (var lockCommand = new NpgsqlCommand("select pg_advisory_xact_lock(hashtext($1))", connection, transaction))
        {
            lockCommand.Parameters.AddWithValue($"cqrsi-sealer:{options.Schema}");
            await lockCommand.ExecuteNonQueryAsync(ct);
        }

        var (lastIndex, lastSequence, chain) = await ReadHeadAsync(connection, transaction, ct);
        var events = await ReadUnsealedAsync(connection, transaction, lastSequence, ct);
        if (events.Count == 0)
        {
            return 0;
        }

        var streamHeads = await ReadStreamHeadsAsync(connection, transaction, events.Select(e => e.Stream).Distinct().ToArray(), ct);
        var seals = new List<Seal>(events.Count);
        foreach (var e in events)
        {
            var eventHash = AuditChain.EventHash(e.Seq, e.Stream, e.Version, e.Type, e.Timestamp, e.Data);
            var streamHash = AuditChain.Link(streamHeads.GetValueOrDefault(e.Stream, AuditChain.Genesis), eventHash);
            streamHeads[e.Stream] = streamHash;
            chain = AuditChain.Link(chain, eventHash);
            seals.Add(new Seal(lastIndex + seals.Count + 1, e.Seq, e.Stream, e.Version, eventHash, streamHash, chain));
        }

        await InsertAsync(connection, transaction, seals, ct);
        await transaction.CommitAsync(ct);
        Sealed += seals.Count;
        return seals.Count;
    }

    private async Task<(long Index, long Sequence, byte[] Chain)> ReadHeadAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken ct)
    {
        await using var head = new NpgsqlCommand($"select seal_index, seq_id, chain_hash from {AuditChain.Table(options.Schema)} order by seal_index desc limit 1", connection, transaction);
        await using var reader = await head.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? (reader.GetInt64(0), reader.GetInt64(1), (byte[])reader[2]) : (0, 0, AuditChain.Genesis);
    }

    /// <summary>The next events not sealed yet; late commits land below the last sealed sequence, so it looks back a window for them.</summary>
    private async Task<List<Unsealed>> ReadUnsealedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long lastSequence, CancellationToken ct)
    {
        await using var select = new NpgsqlCommand(
            $"""
            select e.seq_id, e.stream_id, e.version, e.type, e.timestamp, e.data::text
            from {options.Schema}.mt_events e
            where e.seq_id > $1 and not exists (select 1 from {AuditChain.Table(options.Schema)} s where s.seq_id = e.seq_id)
            order by e.seq_id limit $2
            """, connection, transaction);
        select.Parameters.AddWithValue(Math.Max(0, lastSequence - 100_000));
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
