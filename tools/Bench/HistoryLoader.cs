using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;
using Marten;
using Npgsql;
using NpgsqlTypes;

namespace CqrsInference.Bench;

/// <summary>
/// Fills the event store with finished jobs fast: binary COPY into Marten's own tables (streams,
/// events with a reserved block of sequence numbers, status documents), the rows as the recorder
/// writes them (Marten's serializer, event type names and stream type), so the daemon, the sealer
/// and every reader treat them as recorded history. Three events a job: submitted, started, succeeded.
/// </summary>
internal static class HistoryLoader
{
    private const string Tenant = "*DEFAULT*";
    private const int JobsPerCopy = 50_000;

    public static async Task<long> LoadAsync(BenchSettings settings, IDocumentStore store, int events)
    {
        var jobs = events / 3;
        await using var db = NpgsqlDataSource.Create(settings.Postgres);
        var first = await ReserveAsync(db, settings.Schema, jobs * 3L);
        var serializer = store.Options.Serializer();
        // Finished within the last weeks: younger than Retention:FinishedJobsAfter (30 days), so the
        // measured application does not start archiving them while it is timed.
        var start = DateTimeOffset.UtcNow.AddDays(-20);
        for (var done = 0; done < jobs; done += JobsPerCopy)
        {
            var batch = Enumerable.Range(done, Math.Min(JobsPerCopy, jobs - done)).Select(i => NewJob(i, start)).ToList();
            await using var connection = await db.OpenConnectionAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await CopyStreamsAsync(connection, settings.Schema, batch);
            await CopyEventsAsync(connection, settings.Schema, batch, first + (done * 3L), serializer);
            await CopyStatusesAsync(connection, settings.Schema, batch, serializer);
            await transaction.CommitAsync();
            if ((done / JobsPerCopy) % 4 == 0)
            {
                Console.WriteLine($"  {done + batch.Count:N0} jobs");
            }
        }

        await using var analyze = db.CreateCommand($"analyze {settings.Schema}.mt_events; analyze {settings.Schema}.mt_streams; analyze {settings.Schema}.mt_doc_jobstatus");
        await analyze.ExecuteNonQueryAsync();
        return jobs * 3L;
    }

    private sealed record Job(Guid Id, object[] Events, JobStatus Status);

    private static Job NewJob(int i, DateTimeOffset start)
    {
        var id = Guid.NewGuid();
        var at = start.AddMilliseconds(i * 10L);
        var context = new JobContext("default", "mlp-test", "local", "cpu");
        var submitted = new V1.JobSubmitted(id, context.Tenant, context.Model, "1", context.Region, "batch", at, "digest", 100, null);
        var started = new V1.JobStarted(id, 1, $"gpu-{i % 8}", context.DeviceClass, at.AddMilliseconds(3), 3, context);
        var succeeded = new V1.JobSucceeded(id, 1, $"gpu-{i % 8}", context.DeviceClass, at.AddMilliseconds(5), 2, 1, [], null, context);
        return new Job(id, [submitted, started, succeeded], JobStatusProjection.Apply(succeeded, JobStatusProjection.Apply(started, JobStatusProjection.Create(submitted))));
    }

    /// <summary>Draws <paramref name="count"/> sequence numbers at once; returns the first.</summary>
    private static async Task<long> ReserveAsync(NpgsqlDataSource db, string schema, long count)
    {
        await using var command = db.CreateCommand($"select setval('{schema}.mt_events_sequence', nextval('{schema}.mt_events_sequence') + $1 - 1) - $1 + 1");
        command.Parameters.AddWithValue(count);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task CopyStreamsAsync(NpgsqlConnection connection, string schema, List<Job> jobs)
    {
        await using var copy = await connection.BeginBinaryImportAsync($"copy {schema}.mt_streams (id, type, version, timestamp, created, tenant_id) from stdin (format binary)");
        foreach (var job in jobs)
        {
            await copy.StartRowAsync();
            await copy.WriteAsync(job.Id, NpgsqlDbType.Uuid);
            await copy.WriteAsync("job_status", NpgsqlDbType.Varchar);
            await copy.WriteAsync((long)job.Events.Length, NpgsqlDbType.Bigint);
            await copy.WriteAsync(job.Status.SubmittedAt, NpgsqlDbType.TimestampTz);
            await copy.WriteAsync(job.Status.SubmittedAt, NpgsqlDbType.TimestampTz);
            await copy.WriteAsync(Tenant, NpgsqlDbType.Varchar);
        }

        await copy.CompleteAsync();
    }

    private static async Task CopyEventsAsync(NpgsqlConnection connection, string schema, List<Job> jobs, long sequence, Marten.ISerializer serializer)
    {
        await using var copy = await connection.BeginBinaryImportAsync(
            $"copy {schema}.mt_events (seq_id, id, stream_id, version, data, type, timestamp, tenant_id, mt_dotnet_type, is_archived) from stdin (format binary)");
        foreach (var job in jobs)
        {
            for (var v = 0; v < job.Events.Length; v++)
            {
                var e = job.Events[v];
                await copy.StartRowAsync();
                await copy.WriteAsync(sequence++, NpgsqlDbType.Bigint);
                await copy.WriteAsync(Guid.NewGuid(), NpgsqlDbType.Uuid);
                await copy.WriteAsync(job.Id, NpgsqlDbType.Uuid);
                await copy.WriteAsync(v + 1L, NpgsqlDbType.Bigint);
                await copy.WriteAsync(serializer.ToJson(e), NpgsqlDbType.Jsonb);
                await copy.WriteAsync(EventNames.Of(e), NpgsqlDbType.Varchar);
                await copy.WriteAsync(job.Status.SubmittedAt.AddMilliseconds(v), NpgsqlDbType.TimestampTz);
                await copy.WriteAsync(Tenant, NpgsqlDbType.Varchar);
                await copy.WriteAsync($"{e.GetType().FullName}, {e.GetType().Assembly.GetName().Name}", NpgsqlDbType.Varchar);
                await copy.WriteAsync(false, NpgsqlDbType.Boolean);
            }
        }

        await copy.CompleteAsync();
    }

    private static async Task CopyStatusesAsync(NpgsqlConnection connection, string schema, List<Job> jobs, Marten.ISerializer serializer)
    {
        await using var copy = await connection.BeginBinaryImportAsync($"copy {schema}.mt_doc_jobstatus (id, data, mt_last_modified, mt_dotnet_type, mt_version) from stdin (format binary)");
        foreach (var job in jobs)
        {
            await copy.StartRowAsync();
            await copy.WriteAsync(job.Id, NpgsqlDbType.Uuid);
            await copy.WriteAsync(serializer.ToJson(job.Status), NpgsqlDbType.Jsonb);
            await copy.WriteAsync(job.Status.CompletedAt ?? job.Status.SubmittedAt, NpgsqlDbType.TimestampTz);
            await copy.WriteAsync(typeof(JobStatus).FullName!, NpgsqlDbType.Varchar);
            await copy.WriteAsync((long)job.Events.Length, NpgsqlDbType.Bigint);
        }

        await copy.CompleteAsync();
    }
}
