using CqrsInference.Commands.Backtests;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Projections.Backtests;
using CqrsInference.Projections.JobStatus;
using Marten;

namespace CqrsInference.Api.Backtests;

/// <summary>One job of a backtest's window, read back: its recorded inputs and answer, or why it cannot be compared.</summary>
internal sealed record BacktestCase(JobStatus Job, IReadOnlyList<Tensor>? Inputs, IReadOnlyList<Tensor>? Outputs, string? Skip);

/// <summary>
/// Reads a backtest's window from the history: the succeeded jobs of its model (status documents, by
/// the index on <c>SubmittedAt</c>), their submissions (the kept inputs, <see cref="V1.JobSubmitted.Inputs"/>)
/// and, for inputs or outputs in the object store, the blobs. What cannot be read back is a skip with
/// its reason (<see cref="BacktestSkips"/>), never an error.
/// </summary>
internal sealed class BacktestHistory(IDocumentStore store, IClaimCheck blobs)
{
    /// <summary>
    /// The next jobs after <see cref="BacktestReport.Through"/> in (submitted at, id) order, at most
    /// <paramref name="count"/> and never more than the report's limit leaves.
    /// </summary>
    public async Task<IReadOnlyList<BacktestCase>> NextAsync(BacktestReport report, int count, CancellationToken ct)
    {
        var left = Math.Min(count, report.Limit - report.Seen);
        if (left <= 0)
        {
            return [];
        }

        await using var session = store.QuerySession();

        // PostgreSQL keeps microseconds, .NET ticks: the query reaches a millisecond back and takes a
        // margin more, and the position is compared here, on the documents' own values.
        var through = report.Through;
        List<JobStatus> chosen;
        for (var take = left + PositionMargin; ; take *= 2)
        {
            // The query orders by the instant alone, so the jobs of its last instant may be only some
            // of those submitted then (a bulk submit gives a thousand jobs one instant): they wait
            // for a read that holds them all, else a job of the tie could be passed over for good.
            var jobs = await WindowAsync(session, report, through?.SubmittedAt.AddMilliseconds(-1), take, ct);
            var whole = jobs.Count < take ? jobs : WithoutLastInstant(jobs);
            chosen = whole.Where(j => through is null || j.SubmittedAt > through.SubmittedAt || (j.SubmittedAt == through.SubmittedAt && j.Id.CompareTo(through.JobId) > 0))
                .OrderBy(j => j.SubmittedAt).ThenBy(j => j.Id).Take(left).ToList();
            if (chosen.Count > 0 || jobs.Count < take)
            {
                break;
            }
        }

        var submissions = new Dictionary<Guid, V1.JobSubmitted>();
        foreach (var job in chosen)
        {
            var events = await session.Events.FetchStreamAsync(job.Id, token: ct);
            if (events.Select(e => e.Data).OfType<V1.JobSubmitted>().FirstOrDefault() is { } submitted)
            {
                submissions[job.Id] = submitted;
            }
        }

        var cases = new List<BacktestCase>(chosen.Count);
        foreach (var job in chosen)
        {
            cases.Add(await ReadAsync(job, submissions.GetValueOrDefault(job.Id), ct));
        }

        return cases;
    }

    /// <summary>Jobs read beyond the chunk, so that ties at its boundary are usually all in hand.</summary>
    private const int PositionMargin = 100;

    /// <summary>The jobs without those of the last instant PostgreSQL orders by (it keeps microseconds).</summary>
    private static List<JobStatus> WithoutLastInstant(List<JobStatus> jobs)
    {
        var last = jobs.Max(j => Microseconds(j.SubmittedAt));
        return jobs.Where(j => Microseconds(j.SubmittedAt) < last).ToList();
    }

    private static long Microseconds(DateTimeOffset at) => at.UtcTicks / 10;

    private static async Task<List<JobStatus>> WindowAsync(IQuerySession session, BacktestReport report, DateTimeOffset? after, int take, CancellationToken ct)
    {
        var query = session.Query<JobStatus>().Where(j => j.Model == report.Model && j.Status == JobStatuses.Succeeded
            && j.SubmittedAt >= report.From && j.SubmittedAt < report.To);
        if (after is { } a)
        {
            query = query.Where(j => j.SubmittedAt > a);
        }

        if (report.Tenants is { Count: > 0 } tenants)
        {
            var names = tenants.ToArray();
            query = query.Where(j => names.Contains(j.Tenant));
        }

        return [.. await query.OrderBy(j => j.SubmittedAt).Take(take).ToListAsync(ct)];
    }

    private async Task<BacktestCase> ReadAsync(JobStatus job, V1.JobSubmitted? submitted, CancellationToken ct)
    {
        if (job.ArchivedAt is not null || submitted is null)
        {
            return new BacktestCase(job, null, null, BacktestSkips.Archived);
        }

        var (inputs, inputSkip) = submitted switch
        {
            { InputsRef: { } blob } => await LoadAsync(blob, BacktestSkips.InputExpired, ct),
            { Inputs: { } kept } => RecordedInputs.Verify(kept, submitted.InputsSha256) ? (kept, null) : (null, BacktestSkips.InputChanged),
            _ => (null, BacktestSkips.InputNotKept),
        };
        if (inputSkip is not null)
        {
            return new BacktestCase(job, null, null, inputSkip);
        }

        var (outputs, outputSkip) = job.OutputsRef is { } outputsRef
            ? await LoadAsync(outputsRef, BacktestSkips.OutputExpired, ct)
            : (job.Outputs ?? [], null);
        return new BacktestCase(job, inputs, outputs, outputSkip);
    }

    private async Task<(IReadOnlyList<Tensor>? Tensors, string? Skip)> LoadAsync(BlobRef blob, string expired, CancellationToken ct)
    {
        try
        {
            return (await blobs.LoadAsync(blob, ct), null);
        }
        catch (InvalidDataException e)
        {
            return (null, BlobExpired.IsExpired(e) ? expired : BacktestSkips.InputChanged);
        }
    }
}
