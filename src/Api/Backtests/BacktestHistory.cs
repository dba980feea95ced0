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
    /// The next jobs after <see cref="BacktestReport.Through"/>, oldest first, at most
    /// <paramref name="count"/> and never more than the report's limit leaves; the jobs sharing the
    /// last one's submit time come along whole (so the next chunk can start strictly after it), in
    /// (submitted at, id) order.
    /// </summary>
    public async Task<IReadOnlyList<BacktestCase>> NextAsync(BacktestReport report, int count, CancellationToken ct)
    {
        var left = Math.Min(count, report.Limit - report.Seen);
        if (left <= 0)
        {
            return [];
        }

        await using var session = store.QuerySession();
        var jobs = await WindowAsync(session, report, report.Through?.SubmittedAt, left, ct);
        if (jobs.Count > 0)
        {
            var last = jobs[^1].SubmittedAt;
            var ties = await WindowAsync(session, report, null, int.MaxValue, ct, exactly: last);
            jobs = [.. jobs.Where(j => j.SubmittedAt != last).Concat(ties)];
        }

        // Ties may make the chunk longer than asked; only the limit cuts it.
        var chosen = jobs.OrderBy(j => j.SubmittedAt).ThenBy(j => j.Id).Take(report.Limit - report.Seen).ToList();
        var ids = chosen.Select(j => j.Id).ToList();
        var submissions = (await session.Events.QueryRawEventDataOnly<V1.JobSubmitted>().Where(e => ids.Contains(e.JobId)).ToListAsync(ct))
            .GroupBy(e => e.JobId).ToDictionary(g => g.Key, g => g.First());
        var cases = new List<BacktestCase>(chosen.Count);
        foreach (var job in chosen)
        {
            cases.Add(await ReadAsync(job, submissions.GetValueOrDefault(job.Id), ct));
        }

        return cases;
    }

    private static async Task<List<JobStatus>> WindowAsync(
        IQuerySession session, BacktestReport report, DateTimeOffset? after, int take, CancellationToken ct, DateTimeOffset? exactly = null)
    {
        var query = session.Query<JobStatus>().Where(j => j.Model == report.Model && j.Status == JobStatuses.Succeeded
            && j.SubmittedAt >= report.From && j.SubmittedAt < report.To);
        if (after is { } a)
        {
            query = query.Where(j => j.SubmittedAt > a);
        }

        if (exactly is { } e)
        {
            query = query.Where(j => j.SubmittedAt == e);
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
