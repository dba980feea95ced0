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
public sealed partial class AuditSealer(AuditOptions options, ILogger<AuditSealer> logger) : BackgroundService
{
    private readonly NpgsqlDataSource _db = NpgsqlDataSource.Create(options.ConnectionString);

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
                    await EnsureTableAsync(_db, options.Schema, stoppingToken);
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

    public override void Dispose()
    {
        _db.Dispose();
        base.Dispose();
    }

    public static async Task EnsureTableAsync(NpgsqlDataSource db, string schema, CancellationToken ct)
    {
        await using var command = db.CreateCommand(AuditChain.CreateTableSql(schema));
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Seals the next events not yet sealed; returns how many.</summary>
    public async Task<int> SealOnceAsync(CancellationToken ct)
    {
        var table = AuditChain.Table(options.Schema);
        await using var connection = await _db.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using (var lockCommand = new NpgsqlCommand("select pg_advisory_xact_lock(hashtext($1))", connection, transaction))
        {
            lockCommand.Parameters.AddWithValue($"cqrsi-sealer:{options.Schema}");
            await lockCommand.ExecuteNonQueryAsync(ct);
        }

        long lastIndex = 0, lastSequence = 0;
        var chain = AuditChain.Genesis;
        await using (var head = new NpgsqlCommand($"select seal_index, seq_id, chain_hash from {table} order by seal_index desc limit 1", connection, transaction))
        await using (var reader = await head.ExecuteReaderAsync(ct))
        {
            if (await reader.ReadAsync(ct))
            {
                (lastIndex, lastSequence, chain) = (reader.GetInt64(0), reader.GetInt64(1), (byte[])reader[2]);
            }
        }

        // Late commits land below the last sealed sequence; look back a window for them.
        var events = new List<(long Seq, Guid Stream, long Version, string Type, DateTimeOffset Timestamp, string Data)>();
        await using (var select = new NpgsqlCommand(
            $"""
            select e.seq_id, e.stream_id, e.version, e.type, e.timestamp, e.data::text
            from {options.Schema}.mt_events e
            where e.seq_id > $1 and not exists (select 1 from {table} s where s.seq_id = e.seq_id)
            order by e.seq_id limit $2
            """, connection, transaction))
        {
            select.Parameters.AddWithValue(Math.Max(0, lastSequence - 100_000));
            select.Parameters.AddWithValue(options.SealBatch);
            await using var reader = await select.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                events.Add((reader.GetInt64(0), reader.GetGuid(1), reader.GetInt64(2), reader.GetString(3), await reader.GetFieldValueAsync<DateTimeOffset>(4, ct), reader.GetString(5)));
            }
        }

        if (events.Count == 0)
        {
            return 0;
        }

        var streams = events.Select(e => e.Stream).Distinct().ToArray();
        var streamHeads = new Dictionary<Guid, byte[]>();
        await using (var heads = new NpgsqlCommand(
            $"select distinct on (stream_id) stream_id, stream_hash from {table} where stream_id = any($1) order by stream_id, seal_index desc",
            connection, transaction))
        {
            heads.Parameters.AddWithValue(streams);
            await using var reader = await heads.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                streamHeads[reader.GetGuid(0)] = (byte[])reader[1];
            }
        }

        var count = events.Count;
        var indexes = new long[count];
        var sequences = new long[count];
        var streamIds = new Guid[count];
        var versions = new long[count];
        var eventHashes = new byte[count][];
        var streamHashes = new byte[count][];
        var chainHashes = new byte[count][];
        for (var i = 0; i < count; i++)
        {
            var e = events[i];
            var eventHash = AuditChain.EventHash(e.Seq, e.Stream, e.Version, e.Type, e.Timestamp, e.Data);
            var streamHash = AuditChain.Link(streamHeads.GetValueOrDefault(e.Stream, AuditChain.Genesis), eventHash);
            streamHeads[e.Stream] = streamHash;
            chain = AuditChain.Link(chain, eventHash);
            (indexes[i], sequences[i], streamIds[i], versions[i]) = (lastIndex + i + 1, e.Seq, e.Stream, e.Version);
            (eventHashes[i], streamHashes[i], chainHashes[i]) = (eventHash, streamHash, chain);
        }

        await using (var insert = new NpgsqlCommand(
            $"""
            insert into {table} (seal_index, seq_id, stream_id, version, event_hash, stream_hash, chain_hash)
            select * from unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bigint[], $5::bytea[], $6::bytea[], $7::bytea[])
            """, connection, transaction))
        {
            insert.Parameters.AddWithValue(indexes);
            insert.Parameters.AddWithValue(sequences);
            insert.Parameters.AddWithValue(streamIds);
            insert.Parameters.AddWithValue(versions);
            insert.Parameters.Add(new NpgsqlParameter { Value = eventHashes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
            insert.Parameters.Add(new NpgsqlParameter { Value = streamHashes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
            insert.Parameters.Add(new NpgsqlParameter { Value = chainHashes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
            await insert.ExecuteNonQueryAsync(ct);
        }

        await transaction.CommitAsync(ct);
        Sealed += count;
        return count;
    }

    [LoggerMessage(LogLevel.Warning, "Sealing events into the audit chain failed: {Reason}")]
    private static partial void LogSealFailed(ILogger logger, string reason);
}
