using System.Diagnostics;
using CqrsInference.Commands.Jobs;
using Marten;
using Npgsql;
using NpgsqlTypes;

namespace CqrsInference.Projections.Audit;

public sealed record ReplayReport(
    string Projection,
    string ReplaySchema,
    long Events,
    long Documents,
    double Seconds,
    double EventsPerSecond,
    bool Identical,
    long DifferenceCount,
    IReadOnlyList<ReplayDifference> Differences,
    long UnlistedDifferences);

/// <summary>
/// Rebuilds a projection from the event log into fresh tables (a schema of its own) and compares
/// the result, document by document, with the live read model. One replay at a time
/// (<see cref="AuditRunLock"/>): they would share the replay schema. Memory is bounded by a page:
/// the events are read in pages of <see cref="AuditOptions.ReplayPage"/>, ordered by stream and
/// version, so a stream's document is complete when the next stream starts; complete documents are
/// written and compared page by page, and only the stream still open is carried to the next page.
/// </summary>
public sealed class ProjectionReplay(IDocumentStore live, NpgsqlDataSource db, AuditOptions options)
{
    public static readonly IReadOnlyList<string> Projections = ["job-status"];

    private static readonly string StatusType = typeof(JobStatus.JobStatus).FullName!;

    /// <summary>A stream's document as rebuilt so far, with the version of its last event.</summary>
    private sealed record Folded(Guid Id, JobStatus.JobStatus? Status, long Version);

    public async Task<ReplayReport> RunAsync(string projection, IProgress<long>? progress, CancellationToken ct)
    {
        if (projection != "job-status")
        {
            throw new ArgumentException($"Unknown projection '{projection}'; known: {string.Join(", ", Projections)}.", nameof(projection));
        }

        await using var running = await AuditRunLock.EnterAsync(options, "replay", ct);
        var watch = Stopwatch.StartNew();
        var replaySchema = $"{options.Schema}_replay";
        await ResetAsync(replaySchema, ct);
        var differences = new ReplayDifferences(options.ReplayListedDifferences);
        var (events, documents) = await FoldAndCompareAsync(replaySchema, differences, progress, ct);
        await FindLiveOnlyAsync(replaySchema, differences, ct);
        var seconds = watch.Elapsed.TotalSeconds;
        return new ReplayReport(projection, replaySchema, events, documents, seconds, events / Math.Max(seconds, 1e-9),
            differences.Count == 0, differences.Count, differences.Listed, differences.Unlisted);
    }

    /// <summary>Fresh tables: the replay schema's copy of the live table (same columns and indexes), dropped and made again.</summary>
    private async Task ResetAsync(string replaySchema, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            $"""
            create schema if not exists {replaySchema};
            drop table if exists {replaySchema}.mt_doc_jobstatus;
            create table {replaySchema}.mt_doc_jobstatus (like {options.Schema}.mt_doc_jobstatus including all);
            """);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Folds every stream's events, in order, through the projection's own code; writes and compares each page's finished documents.</summary>
    private async Task<(long Events, long Documents)> FoldAndCompareAsync(string replaySchema, ReplayDifferences differences, IProgress<long>? progress, CancellationToken ct)
    {
        long events = 0, documents = 0;
        var open = new Folded(Guid.Empty, null, 0);
        while (true)
        {
            if (options.ReplayPageHook is { } hook)
            {
                await hook(ct);
            }

            var page = await ReadPageAsync(open.Id, open.Version, ct);
            var finished = new List<Folded>();
            foreach (var (stream, version, data) in page)
            {
                if (stream != open.Id)
                {
                    finished.Add(open);
                    open = new Folded(stream, null, 0);
                }

                var next = JobStatus.JobStatusProjection.Evolve(open.Status, data);
                open = new Folded(stream, next is null ? open.Status : next with { Id = stream }, version);
            }

            if (page.Count == 0)
            {
                finished.Add(open);
            }

            var complete = finished.Where(f => f.Status is not null).ToList();
            await WriteAsync(replaySchema, complete, ct);
            await CompareAsync(complete, differences, ct);
            documents += complete.Count;
            events += page.Count;
            progress?.Report(events);
            if (page.Count == 0)
            {
                return (events, documents);
            }
        }
    }

    /// <summary>
    /// The next page of lifecycle events after (stream, version), in stream and version order (the
    /// stream's own order; the unique index on both serves it). Events of other types (edge sites)
    /// never change a job's status, so they are not read.
    /// </summary>
    private async Task<List<(Guid Stream, long Version, object Data)>> ReadPageAsync(Guid afterStream, long afterVersion, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            $"""
            select stream_id, version, type, data from {options.Schema}.mt_events
            where (stream_id, version) > ($1, $2) and type = any($3) and not is_archived
            order by stream_id, version limit $4
            """);
        command.Parameters.AddWithValue(afterStream);
        command.Parameters.AddWithValue(afterVersion);
        command.Parameters.AddWithValue(EventNames.Types.Keys.ToArray());
        command.Parameters.AddWithValue(options.ReplayPage);
        var serializer = live.Options.Serializer();
        var page = new List<(Guid, long, object)>(options.ReplayPage);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            page.Add((reader.GetGuid(0), reader.GetInt64(1), await serializer.FromJsonAsync(EventNames.Types[reader.GetString(2)], reader, 3, ct)));
        }

        return page;
    }

    private async Task WriteAsync(string replaySchema, List<Folded> documents, CancellationToken ct)
    {
        if (documents.Count == 0)
        {
            return;
        }

        var serializer = live.Options.Serializer();
        await using var command = db.CreateCommand(
            $"""
            insert into {replaySchema}.mt_doc_jobstatus (id, data, mt_version, mt_dotnet_type, mt_last_modified)
            select id, data, version, '{StatusType}', now() from unnest($1::uuid[], $2::jsonb[], $3::bigint[]) as t(id, data, version)
            """);
        command.Parameters.AddWithValue(documents.Select(d => d.Id).ToArray());
        command.Parameters.Add(new NpgsqlParameter { Value = documents.Select(d => serializer.ToJson(d.Status!)).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        command.Parameters.AddWithValue(documents.Select(d => d.Version).ToArray());
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Compares one page of rebuilt documents with the live ones of the same ids.</summary>
    private async Task CompareAsync(List<Folded> rebuilt, ReplayDifferences differences, CancellationToken ct)
    {
        if (rebuilt.Count == 0)
        {
            return;
        }

        await using var command = db.CreateCommand($"select id, data from {options.Schema}.mt_doc_jobstatus where id = any($1)");
        command.Parameters.AddWithValue(rebuilt.Select(d => d.Id).ToArray());
        var serializer = live.Options.Serializer();
        var current = new Dictionary<Guid, JobStatus.JobStatus>(rebuilt.Count);
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                current[reader.GetGuid(0)] = await serializer.FromJsonAsync<JobStatus.JobStatus>(reader, 1, ct);
            }
        }

        foreach (var document in rebuilt)
        {
            if (current.TryGetValue(document.Id, out var status))
            {
                differences.Compare(document.Id, status, document.Status!);
            }
            else
            {
                differences.Add(document.Id, "rebuilt from the events but missing from the live read model");
            }
        }
    }

    /// <summary>
    /// Live documents that no stream rebuilt, found by the database against the replay table; an
    /// archived job's document is not rebuilt (replay folds no archived events) and not missed.
    /// </summary>
    private async Task FindLiveOnlyAsync(string replaySchema, ReplayDifferences differences, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            $"""
            select d.id from {options.Schema}.mt_doc_jobstatus d
            where d.data->>'ArchivedAt' is null and not exists (select 1 from {replaySchema}.mt_doc_jobstatus r where r.id = d.id)
            order by d.id
            """);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            differences.Add(reader.GetGuid(0), "in the live read model but not rebuilt from the events");
        }
    }
}
