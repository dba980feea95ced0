using Microsoft.Extensions.Logging;

namespace CqrsInference.Commands.Jobs.Submitting;

/// <summary>How jobs are taken in while the home region is lost: held in this region (<see cref="IJobHolding"/>).</summary>
public sealed partial class JobIntake
{
    /// <summary>
    /// Holds the decided jobs in this region while the home is lost (<see cref="IJobHolding"/>): the
    /// tenant's rate still applies; each job is durable in the region's hold before the 202, and
    /// reaches the log (and the queue) when the log answers again.
    /// </summary>
    private async Task<SubmitOutcome> HoldAsync(IReadOnlyList<SubmitInferenceJob> commands, SubmitOutcome.AcceptedAll accepted, CancellationToken ct)
    {
        var first = commands[0];
        if (admission.RefuseHeld(first.Tenant, accepted.Jobs.Count) is { } refused)
        {
            return refused;
        }

        var digest = first.IdempotencyKey is null ? null : first.RequestDigest;
        HeldJob[] held;
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            // The region's own servers may be away too: the hold is bounded like the log's publish.
            deadline.CancelAfter(options.DurableWithin);
            try
            {
                held = await Task.WhenAll(accepted.Jobs.Select(j => holding.HoldAsync(j.Job, digest, deadline.Token)));
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                throw new TimeoutException(
                    $"Neither the job log nor this region's hold confirmed within {options.DurableWithin.TotalSeconds:0.#} s; the jobs may or may not be stored: retry with the same Idempotency-Key.");
            }
        }

        if (Array.FindIndex(held, h => h.Conflict) is var conflict and >= 0)
        {
            return new SubmitOutcome.IdempotencyConflict(accepted.Jobs[conflict].Job.JobId);
        }

        var jobs = new List<SubmitOutcome.Accepted>(held.Length);
        for (var i = 0; i < held.Length; i++)
        {
            var job = accepted.Jobs[i].Job;
            LogHeld(logger, job.JobId, job.Model, job.Region, held[i].Duplicate);
            if (!held[i].Duplicate)
            {
                Telemetry.JobsSubmitted.Add(1, new("model", job.Model), new("region", job.Region));
            }

            acceptedJobs.Accepted(job.ToSubmitted(held[i].Bytes));
            jobs.Add(new SubmitOutcome.Accepted(job, held[i].Duplicate));
        }

        return new SubmitOutcome.AcceptedAll(jobs);
    }

    [LoggerMessage(LogLevel.Debug, "Job {JobId} for {Model} in {Region} held while the home is lost (duplicate: {Duplicate})")]
    private static partial void LogHeld(ILogger logger, Guid jobId, string model, string region, bool duplicate);
}
