using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Gating;
using CqrsInference.Processors.Worker.Running;

namespace CqrsInference.Processors.Worker.Publishing;

/// <summary>
/// What a run's outcome means for a job, as a pure function: the event to publish and how to settle
/// the delivery once it is stored. Succeeded and rejected jobs end; a fault is retried with
/// exponential backoff until the delivery limit, then the job is dead-lettered (failed).
/// </summary>
internal sealed class OutcomeDecision(WorkerIdentity worker, int maxDeliver, TimeSpan retryBaseDelay)
{
    /// <summary>The start of a job's attempt, with where it ran and how long it waited.</summary>
    /// <summary>Where and when an attempt started, and how long the job waited for it.</summary>
    public JobStart Start(AdmittedJob admitted, DateTimeOffset startedAt) =>
        new(startedAt, Math.Max(0, (startedAt - admitted.Job.QueuedAt).TotalMilliseconds), worker.Region, admitted.Job.Region != worker.Region);

    /// <summary>The start of a job's attempt as an event of its own, for a run long enough to show the job running.</summary>
    public V1.JobStarted Started(AdmittedJob admitted, DateTimeOffset startedAt)
    {
        var (job, start) = (admitted.Job, Start(admitted, startedAt));
        return new V1.JobStarted(job.JobId, admitted.Attempt, worker.Worker, worker.Device, startedAt, start.QueueWaitMs, Context(job), start.RanInRegion, start.Overflowed);
    }

    /// <summary>
    /// The ending of a run; <paramref name="start"/> is carried on it when no separate
    /// <see cref="V1.JobStarted"/> was published for this attempt.
    /// </summary>
    /// <remarks>
    /// Every ending of a run that took time carries the run time and batch size it is billed for
    /// (<see cref="RunShares"/>), failures too, so that what a batch's jobs carry adds up to the time
    /// the executor counted as busy (<see cref="Commands.Jobs.DeviceTime"/>).
    /// </remarks>
    public JobEnding Decide(AdmittedJob admitted, RunOutcome outcome, BatchRun run, int batchSize, JobStart? start = null) =>
        Decide(admitted, outcome, run.FinishedAt, run.Elapsed > TimeSpan.Zero ? new RunShare(run.Elapsed.TotalMilliseconds, batchSize) : null, start);

    /// <summary>The ending of a run that finished at <paramref name="at"/>, carrying <paramref name="share"/> (null: nothing of the run).</summary>
    public JobEnding Decide(AdmittedJob admitted, RunOutcome outcome, DateTimeOffset at, RunShare? share, JobStart? start = null)
    {
        var (job, attempt) = (admitted.Job, admitted.Attempt);
        var (runMs, size) = (share?.Ms, share?.BatchSize);
        return outcome switch
        {
            RunOutcome.Succeeded s => new JobEnding(admitted, new V1.JobSucceeded(job.JobId, attempt, worker.Worker, worker.Device, at,
                runMs ?? 0, size ?? 1, s.Outputs, s.OutputsRef, Context(job), start), new Settlement.Ack()),
            RunOutcome.Rejected r => new JobEnding(admitted, new V1.JobFailed(job.JobId, attempt, worker.Worker, worker.Device, at,
                r.Code, r.Reason, DeadLettered: false, Context(job), start, RunMs: runMs, BatchSize: size), new Settlement.Terminate()),
            RunOutcome.Faulted f when attempt >= maxDeliver => new JobEnding(admitted, new V1.JobFailed(job.JobId, attempt, worker.Worker, worker.Device, at,
                f.Code, $"Gave up after {attempt} attempts (the delivery limit); last error: {f.Reason}", DeadLettered: true, Context(job), start,
                RunMs: runMs, BatchSize: size), new Settlement.Terminate()),
            RunOutcome.Faulted f => Retry(admitted, f, at, start, (runMs, size)),

            // Only repeats the cancel the API stored first under the job's terminal id: dropped as a duplicate.
            RunOutcome.Cancelled => new JobEnding(admitted, new V1.JobCancelled(job.JobId, at, $"run aborted by {worker.Worker}"), new Settlement.Terminate()),
            _ => throw new ArgumentOutOfRangeException(nameof(outcome), outcome, "Unknown run outcome."),
        };
    }

    private JobEnding Retry(AdmittedJob admitted, RunOutcome.Faulted fault, DateTimeOffset at, JobStart? start, (double? Ms, int? BatchSize) run)
    {
        var retryAfter = retryBaseDelay * Math.Pow(2, admitted.Attempt - 1);
        var failed = new V1.JobAttemptFailed(admitted.Job.JobId, admitted.Attempt, worker.Worker, worker.Device, at, fault.Code, fault.Reason, retryAfter,
            start, Context(admitted.Job), RunMs: run.Ms, BatchSize: run.BatchSize);
        return new JobEnding(admitted, failed, new Settlement.Retry(retryAfter));
    }

    /// <summary>The job's context; its version is the one that ran it (the command carries it from submit; empty in jobs queued before versions: the default).</summary>
    private JobContext Context(JobCommand job) => new(job.Tenant, job.Model, job.Region, worker.DeviceClass, string.IsNullOrEmpty(job.ModelVersion) ? null : job.ModelVersion);
}
