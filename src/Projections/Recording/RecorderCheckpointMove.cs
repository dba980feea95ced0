using CqrsInference.Messaging;
using CqrsInference.Projections.Recording.JobLog;
using Marten;
using Npgsql;

namespace CqrsInference.Projections.Recording;

/// <summary>
/// The job log recorders' checkpoints as a region takeover moves them (<see cref="RegionFailover"/>):
/// each step is one transaction that draws the next term of every partition's lock
/// (<see cref="RecorderFence"/>), so a leader's transaction in flight ends first and nothing it
/// writes afterwards commits; its lease's keep-alive sees the new term within a second, and it
/// leads again from the checkpoint as it is then.
/// </summary>
public sealed class RecorderCheckpointMove(NpgsqlDataSource db, IDocumentStore store, RecorderOptions options, TopologyOptions topology) : IRecorderCheckpoints
{
    private static readonly string CheckpointType = typeof(RecorderCheckpoint).FullName!;

    private IEnumerable<LogSource> Sources => Enumerable.Range(0, topology.Partitions).Select(JobLogRecorder.SourceOf);

    public async Task<IReadOnlyDictionary<string, ulong>> FenceAsync(CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await FenceAllAsync(connection, ct);
        var checkpoints = Sources.ToDictionary(s => s.CheckpointId, _ => 0UL);
        await using (var read = new NpgsqlCommand($"select data from {options.Schema}.mt_doc_recordercheckpoint where id = any($1)", connection))
        {
            read.Parameters.Add(new NpgsqlParameter { Value = checkpoints.Keys.ToArray() });
            await using var reader = await read.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var checkpoint = await store.Options.Serializer().FromJsonAsync<RecorderCheckpoint>(reader, 0, ct);
                checkpoints[checkpoint.Id] = checkpoint.Sequence;
            }
        }

        await transaction.CommitAsync(ct);
        return checkpoints;
    }

    public async Task MoveAsync(IReadOnlyDictionary<string, ulong> checkpoints, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await FenceAllAsync(connection, ct);
        foreach (var (id, sequence) in checkpoints)
        {
            await using var write = new NpgsqlCommand(
                $"""
                insert into {options.Schema}.mt_doc_recordercheckpoint (id, data, mt_dotnet_type, mt_last_modified) values ($1, $2::jsonb, '{CheckpointType}', now())
                on conflict (id) do update set data = excluded.data, mt_last_modified = excluded.mt_last_modified, mt_version = md5(random()::text || clock_timestamp()::text)::uuid
                """,
                connection);
            write.Parameters.Add(new NpgsqlParameter { Value = id });
            write.Parameters.Add(new NpgsqlParameter { Value = store.Options.Serializer().ToJson(new RecorderCheckpoint(id, sequence)) });
            await write.ExecuteNonQueryAsync(ct);
        }

        await transaction.CommitAsync(ct);
    }

    /// <summary>Draws the next term of every partition's lock (the table made if no recorder ever led).</summary>
    private async Task FenceAllAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using (var create = new NpgsqlCommand(RecorderFence.CreateTableSql(options.Schema), connection))
        {
            await create.ExecuteNonQueryAsync(ct);
        }

        foreach (var source in Sources)
        {
            await using var next = new NpgsqlCommand(
                $"""
                insert into {options.Schema}.cqrsi_recorder_term (id, term) values ($1, 1)
                on conflict (id) do update set term = cqrsi_recorder_term.term + 1
                """,
                connection);
            next.Parameters.Add(new NpgsqlParameter { Value = $"{source.LockName}:{options.Schema}" });
            await next.ExecuteNonQueryAsync(ct);
        }
    }
}
