using CqrsInference.Commands.Jobs;
using Marten;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace CqrsInference.Projections.Recording.JobLog;

/// <summary>
/// Writes a run of the job log into Marten's own tables, set-based: every new stream in one insert,
/// every stream's new version in one update, every event in one insert (sequence numbers drawn in
/// log order), every touched status document in one upsert, and the checkpoint — one round trip,
/// one transaction. Marten's per-stream append function costs a call per job stream; this costs a
/// statement per kind of row. Processors' capacity facts (a few a minute) go through a Marten
/// session in the same transaction, so their inline projection runs as usual. The rows are Marten's
/// own (its serializer, its event type names, its stream type), so everything that reads the store
/// through Marten — time travel, the async daemon's roll-ups, replay — reads them as its own.
/// </summary>
internal sealed partial class EventTables(IDocumentStore store, NpgsqlDataSource db, string schema, ILogger logger)
{
    private const string Tenant = "*DEFAULT*";
    private const string JobStreamType = "job_status";
    private static readonly string StatusType = typeof(JobStatus.JobStatus).FullName!;
    private static readonly string CheckpointType = typeof(RecorderCheckpoint).FullName!;

    public async Task WriteAsync(RecordingPlan plan, IReadOnlyList<LogEvent> processorEvents, RecorderCheckpoint checkpoint, RecorderFence? fence, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        if (processorEvents.Count == 0)
        {
            // A batch runs in one implicit transaction: one round trip, and no row stays locked
            // while the client is away.
            await using var alone = Batch(connection, transaction: null, plan, checkpoint, fence);
            await alone.ExecuteNonQueryAsync(ct);
            return;
        }

        await using var transaction = await connection.BeginTransactionAsync(ct);
        var recorded = await RecordedAsync(connection, transaction, processorEvents, ct);
        await using (var session = store.LightweightSession(Marten.Services.SessionOptions.ForTransaction(transaction, shouldAutoCommit: false)))
        {
            foreach (var e in processorEvents.Where(e => !recorded.Contains(e.EventId)))
            {
                var wrapper = session.Events.BuildEvent(e.Event);
                wrapper.Id = e.EventId;
                session.Events.Append(e.StreamId, wrapper);
            }

            await session.SaveChangesAsync(ct);
        }

        await using var batch = Batch(connection, transaction, plan, checkpoint, fence);
        await batch.ExecuteNonQueryAsync(ct);
        await transaction.CommitAsync(ct);
    }

    /// <summary>
    /// Which of the processors' events are recorded already (read again from a checkpoint moved back,
    /// say): their ids are unique, so appending one again would fail the whole run.
    /// </summary>
    private async Task<HashSet<Guid>> RecordedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<LogEvent> events, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand($"select id from {schema}.mt_events where id = any($1)", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => e.EventId).ToArray() });
        var recorded = new HashSet<Guid>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            recorded.Add(reader.GetGuid(0));
        }

        return recorded;
    }

    private NpgsqlBatch Batch(NpgsqlConnection connection, NpgsqlTransaction? transaction, RecordingPlan plan, RecorderCheckpoint checkpoint, RecorderFence? fence)
    {
        var batch = new NpgsqlBatch(connection, transaction);
        if (fence is not null)
        {
            // First: a recorder whose term is past commits nothing (the batch is one transaction).
            batch.BatchCommands.Add(Command(fence.Sql, fence.Key, fence.Term));
        }

        AddStreams(batch, plan);
        AddEvents(batch, plan.Appended);
        AddStatuses(batch, plan.Touched);
        AddCheckpoint(batch, checkpoint);
        return batch;
    }

    private void AddStreams(NpgsqlBatch batch, RecordingPlan plan)
    {
        var started = plan.Started.ToHashSet();
        var fresh = plan.Touched.Where(t => started.Contains(t.Key)).ToList();
        var grown = plan.Touched.Where(t => !started.Contains(t.Key)).ToList();
        if (fresh.Count > 0)
        {
            batch.BatchCommands.Add(Command(
                $"""
                insert into {schema}.mt_streams (id, type, version, timestamp, created, tenant_id)
                select id, '{JobStreamType}', version, now(), now(), '{Tenant}' from unnest($1::uuid[], $2::bigint[]) as t(id, version)
                """,
                fresh.Select(t => t.Key).ToArray(), fresh.Select(t => t.Value.Version).ToArray()));
        }

        if (grown.Count > 0)
        {
            batch.BatchCommands.Add(Command(
                $"update {schema}.mt_streams s set version = t.version, timestamp = now() from unnest($1::uuid[], $2::bigint[]) as t(id, version) where s.id = t.id",
                grown.Select(t => t.Key).ToArray(), grown.Select(t => t.Value.Version).ToArray()));
        }
    }

    private void AddEvents(NpgsqlBatch batch, IReadOnlyList<AppendedEvent> events)
    {
        if (events.Count == 0)
        {
            return;
        }

        var serializer = store.Options.Serializer();
        var command = Command(
            $"""
            insert into {schema}.mt_events (seq_id, id, stream_id, version, data, type, timestamp, tenant_id, mt_dotnet_type, is_archived)
            select nextval('{schema}.mt_events_sequence'), t.id, t.stream_id, t.version, t.data, t.type, now(), '{Tenant}', t.dotnet_type, false
            from (select * from unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::jsonb[], $5::varchar[], $6::varchar[])
                  with ordinality as u(id, stream_id, version, data, type, dotnet_type, n) order by n) t
            """,
            events.Select(e => e.Id).ToArray(), events.Select(e => e.StreamId).ToArray(), events.Select(e => e.Version).ToArray());
        command.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => Storable(serializer.ToJson(e.Event), e.StreamId, EventNames.Of(e.Event))).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        command.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => EventNames.Of(e.Event)).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => DotNetType(e.Event.GetType())).ToArray() });
        batch.BatchCommands.Add(command);
    }

    private void AddStatuses(NpgsqlBatch batch, IReadOnlyDictionary<Guid, JobStream> touched)
    {
        if (touched.Count == 0)
        {
            return;
        }

        var serializer = store.Options.Serializer();
        var command = Command(
            $"""
            insert into {schema}.mt_doc_jobstatus (id, data, mt_version, mt_dotnet_type, mt_last_modified)
            select id, data, version, '{StatusType}', now() from unnest($1::uuid[], $2::jsonb[], $3::bigint[]) as t(id, data, version)
            on conflict (id) do update set data = excluded.data, mt_version = excluded.mt_version, mt_last_modified = excluded.mt_last_modified
            """,
            touched.Keys.ToArray());
        command.Parameters.Add(new NpgsqlParameter { Value = touched.Select(t => Storable(serializer.ToJson(t.Value.Status), t.Key, "status")).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        command.Parameters.Add(new NpgsqlParameter { Value = touched.Values.Select(s => s.Version).ToArray() });
        batch.BatchCommands.Add(command);
    }

    private void AddCheckpoint(NpgsqlBatch batch, RecorderCheckpoint checkpoint)
    {
        var command = Command(
            $"""
            insert into {schema}.mt_doc_recordercheckpoint (id, data, mt_dotnet_type, mt_last_modified) values ($1, $2::jsonb, '{CheckpointType}', now())
            on conflict (id) do update set data = excluded.data, mt_last_modified = excluded.mt_last_modified, mt_version = md5(random()::text || clock_timestamp()::text)::uuid
            """,
            checkpoint.Id);
        command.Parameters.Add(new NpgsqlParameter { Value = store.Options.Serializer().ToJson(checkpoint) });
        batch.BatchCommands.Add(command);
    }

    private static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        return command;
    }

    /// <summary>The document as jsonb can store it (<see cref="JsonbRepair"/>); a repair is logged.</summary>
    private string Storable(string json, Guid jobId, string what)
    {
        var storable = JsonbRepair.Storable(json, out var repaired);
        if (repaired)
        {
            LogRepaired(logger, what, jobId);
        }

        return storable;
    }

    [LoggerMessage(LogLevel.Error, "The {What} of job {JobId} held a NUL character or a number PostgreSQL cannot store; recorded with U+FFFD and the nearest double in their place")]
    private static partial void LogRepaired(ILogger logger, string what, Guid jobId);

    /// <summary>The type name Marten stores beside each event: "Namespace.Type, Assembly".</summary>
    private static string DotNetType(Type type) => $"{type.FullName}, {type.Assembly.GetName().Name}";
}
