using System.Diagnostics;
using System.Text.Json;
using Marten;

namespace CqrsInference.Projections.Audit;

public sealed record ReplayDifference(Guid Id, string Problem);

public sealed record ReplayReport(
    string Projection,
    string ReplaySchema,
    long Events,
    long Documents,
    double Seconds,
    double EventsPerSecond,
    bool Identical,
    long DifferenceCount,
    IReadOnlyList<ReplayDifference> Differences);

/// <summary>
/// Rebuilds a projection from the event log into fresh tables (a schema of its own) and compares
/// the result, document by document, with the live read model.
/// </summary>
public sealed class ProjectionReplay(IDocumentStore live, AuditOptions options)
{
    public static readonly IReadOnlyList<string> Projections = ["job-status"];

    public async Task<ReplayReport> RunAsync(string projection, IProgress<long>? progress, CancellationToken ct)
    {
        if (projection != "job-status")
        {
            throw new ArgumentException($"Unknown projection '{projection}'; known: {string.Join(", ", Projections)}.", nameof(projection));
        }

        var watch = Stopwatch.StartNew();
        var (rebuilt, events) = await FoldAsync(progress, ct);
        var replaySchema = $"{options.Schema}_replay";
        await WriteAsync(replaySchema, rebuilt.Values, ct);
        var seconds = watch.Elapsed.TotalSeconds;
        var (documents, differenceCount, differences) = await CompareAsync(rebuilt, ct);
        return new ReplayReport(projection, replaySchema, events, rebuilt.Count, seconds, events / Math.Max(seconds, 1e-9),
            differenceCount == 0, differenceCount, differences);
    }

    /// <summary>Folds every event, in sequence order, through the projection's own code.</summary>
    private async Task<(Dictionary<Guid, JobStatus.JobStatus> Rebuilt, long Events)> FoldAsync(IProgress<long>? progress, CancellationToken ct)
    {
        var rebuilt = new Dictionary<Guid, JobStatus.JobStatus>();
        long events = 0, last = 0;
        await using var session = live.QuerySession();
        while (true)
        {
            var page = await session.Events.QueryAllRawEvents().Where(e => e.Sequence > last).OrderBy(e => e.Sequence).Take(10_000).ToListAsync(ct);
            if (page.Count == 0)
            {
                return (rebuilt, events);
            }

            foreach (var e in page)
            {
                if (JobStatus.JobStatusProjection.Evolve(rebuilt.GetValueOrDefault(e.StreamId), e.Data) is { } next)
                {
                    rebuilt[e.StreamId] = next with { Id = e.StreamId };
                }
            }

            events += page.Count;
            last = page[^1].Sequence;
            progress?.Report(events);
        }
    }

    /// <summary>Fresh tables: a schema of its own, emptied first.</summary>
    private async Task WriteAsync(string replaySchema, IEnumerable<JobStatus.JobStatus> documents, CancellationToken ct)
    {
        using var replay = DocumentStore.For(o =>
        {
            o.Connection(options.ConnectionString);
            o.DatabaseSchemaName = replaySchema;
            o.AutoCreateSchemaObjects = JasperFx.AutoCreate.CreateOrUpdate;
            o.UseSystemTextJsonForSerialization();
            o.Schema.For<JobStatus.JobStatus>();
        });
        await replay.Advanced.Clean.DeleteDocumentsByTypeAsync(typeof(JobStatus.JobStatus), ct);
        await replay.BulkInsertDocumentsAsync(documents, batchSize: 5000, cancellation: ct);
    }

    /// <summary>Compares the rebuilt documents with the live read model, listing the first 20 differences.</summary>
    private async Task<(long Documents, long DifferenceCount, List<ReplayDifference> Differences)> CompareAsync(Dictionary<Guid, JobStatus.JobStatus> rebuilt, CancellationToken ct)
    {
        var differences = new List<ReplayDifference>();
        long count = 0, documents = 0;
        void Differ(Guid id, string problem)
        {
            if (++count <= 20)
            {
                differences.Add(new ReplayDifference(id, problem));
            }
        }

        var seen = new HashSet<Guid>();
        await using var session = live.QuerySession();
        var after = Guid.Empty;
        while (await session.QueryAsync<JobStatus.JobStatus>("where id > ? order by id limit 5000", ct, after) is { Count: > 0 } page)
        {
            foreach (var doc in page)
            {
                documents++;
                seen.Add(doc.Id);
                if (!rebuilt.TryGetValue(doc.Id, out var expected))
                {
                    Differ(doc.Id, "in the live read model but not rebuilt from the events");
                }
                else if (Json(expected) != Json(doc))
                {
                    Differ(doc.Id, $"differs: live {Json(doc)} vs rebuilt {Json(expected)}");
                }
            }

            after = page[^1].Id;
        }

        foreach (var id in rebuilt.Keys.Where(id => !seen.Contains(id)))
        {
            Differ(id, "rebuilt from the events but missing from the live read model");
        }

        return (documents, count, differences);
    }

    private static string Json(JobStatus.JobStatus status) => JsonSerializer.Serialize(status);
}
