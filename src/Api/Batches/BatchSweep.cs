using CqrsInference.Commands.Batches.Expiring;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Cancelling;
using CqrsInference.Messaging;
using CqrsInference.Projections.JobStatus;
using Marten;
using Mediator;

namespace CqrsInference.Api.Batches;

/// <summary>
/// Ends a batch's jobs that are still queued, through the jobs' own commands: a cancelled batch's
/// through <see cref="CancelInferenceJob"/>, an expired batch's through <see cref="ExpireBatchJob"/>
/// (both take the job's claim first, so a job a processor already took runs to its end: the batch's
/// cancel is queued-only, <see cref="CancelInferenceJob.QueuedOnly"/>, even while the job's recorded
/// status still says queued).
/// </summary>
internal static class BatchSweep
{
    private const int PageSize = 1000;
    private const int InParallel = 16;

    /// <summary>
    /// Ends every queued job of the batch recorded so far, but none retried after the batch ended
    /// (<paramref name="batchEndedAt"/>): a line's <c>:retry</c> queues it again on purpose, and the
    /// sweeps that follow a batch's end for a while cancelled or expired it again at once. Returns
    /// how many it ended.
    /// </summary>
    public static async Task<int> EndQueuedAsync(
        IDocumentStore store, ISender sender, JobQueues queues, Guid batchId, DateTimeOffset batchEndedAt, DateTimeOffset? expiredAt, string cancelledBy,
        DateTimeOffset now, CancellationToken ct)
    {
        var ended = 0;
        var after = 0;
        while (true)
        {
            List<JobStatus> page;
            await using (var session = store.QuerySession())
            {
                page = (await session.Query<JobStatus>()
                    .Where(j => j.Batch!.BatchId == batchId && j.Batch.Line > after && j.Status == JobStatuses.Queued)
                    .OrderBy(j => j.Batch!.Line)
                    .Take(PageSize)
                    .ToListAsync(ct)).ToList();
            }

            var ending = page.Where(j => j.RetriedAt is not { } retried || retried <= batchEndedAt);
            await Parallel.ForEachAsync(ending, new ParallelOptions { MaxDegreeOfParallelism = InParallel, CancellationToken = ct }, async (job, token) =>
            {
                var route = new JobRoute(job.Region, job.Model, job.CurrentSeries());
                var done = expiredAt is { } deadline
                    ? await sender.Send(new ExpireBatchJob(job.Id, route, deadline, now), token)
                    : await sender.Send(new CancelInferenceJob(job.Id, route, job.Status, cancelledBy, now, QueuedOnly: true), token) is CancelOutcome.Cancelled;
                if (done)
                {
                    Interlocked.Increment(ref ended);
                    await queues.WithdrawAsync(new JobQueue(job.Region, job.Model, job.Priority, job.Tenant), job.Id, token);
                }
            });
            if (page.Count < PageSize)
            {
                return ended;
            }

            after = page[^1].Batch!.Line;
        }
    }
}
