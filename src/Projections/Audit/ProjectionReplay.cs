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
        var rebuilt = new Dictionary<Guid, JobStatus.JobStatus>();
        long events = 0, last = 0;
        await using (var session = live.QuerySession())
        {
            while (true)
            {
                var page = await session.Events.QueryAllRawEvents()
                    .Where(e => e.Sequence > last)
                    .OrderBy(e => e.Sequence)
                    .Take(10_000)
                    .ToListAsync(ct);
                if (page.Count == 0)
                {
                    break;
                }

                foreach (var e in page)
                {
                    var next = JobStatus.JobStatusProjection.Evolve(rebuilt.GetValueOrDefault(e.StreamId), e.Data);
                    if (next is not null)
                    {
                        rebuilt[e.StreamId] = next with { Id = e.StreamId };
                    }
                }

                events += page.Count;
                last = page[^1].Sequence;
                progress?.Report(events);
            }
        }

        // Fresh tables: a schema of its own, emptied first.
        var replaySchema = $"{options.Schema}_replay";
        using (var replay = DocumentStore.For(o =>
               {
                   o.Connection(options.ConnectionString);
                   o.DatabaseSchemaName = replaySchema;
                   o.AutoCreateSchemaObjects = JasperFx.AutoCreate.CreateOrUpdate;
                   o.UseSystemTextJsonForSerialization();
                   o.Schema.For<JobStatus.JobStatus>();
               }))
        {
            await replay.Advanced.Clean.DeleteDocumentsByTypeAsync(typeof(JobStatus.JobStatus), ct);
            await replay.BulkInsertDocumentsAsync(rebuilt.Values, batchSize: 5000, cancellation: ct);
        }

        var seconds = watch.Elapsed.TotalSeconds;
        var differences = new List<ReplayDifference>();
        long differenceCount = 0, documents = 0;
        await using (var session = live.QuerySession())
        {
            var seen = new HashSet<Guid>();
            Guid after = Guid.Empty;
            while (true)
            {
                var page = await session.QueryAsync<JobStatus.JobStatus>("where id > ? order by id limit 5000", ct, after);
                if (page.Count == 0)
                {
                    break;
                }

                foreach (var doc in page)
                {
                    documents++;
                    seen.Add(doc.Id);
                    var problem = !rebuilt.TryGetValue(doc.Id, out var expected)
                        ? "in the live read model but not rebuilt from the events"
                        : Json(expected) != Json(doc) ? $"differs: live {Json(doc)} vs rebuilt {Json(expected)}" : null;
                    if (problem is not null && ++differenceCount <= 20)
                    {
                        differences.Add(new ReplayDifference(doc.Id, problem));
                    }
                }

                after = page[^1].Id;
            }

            foreach (var id in rebuilt.Keys.Where(id => !seen.Contains(id)))
            {
                if (++differenceCount <= 20)
                {
                    differences.Add(new ReplayDifference(id, "rebuilt from the events but missing from the live read model"));
                }
            }
        }

        return new ReplayReport(projection, replaySchema, events, rebuilt.Count, seconds, events / Math.Max(seconds, 1e-9),
            differenceCount == 0, differenceCount, differences);
    }

    private static string Json(JobStatus.JobStatus status) => JsonSerializer.Serialize(status);
}
