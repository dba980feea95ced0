using Mediator;

namespace CqrsInference.Commands.Jobs.Cancelling;

/// <summary>
/// Cancel a job. The caller has read the job (it exists and is the tenant's) and passes the status
/// it saw and where the job's events go; the claim and the log decide what actually happens.
/// <paramref name="QueuedOnly"/>: cancel the job only if no processor has claimed it yet; a job a
/// processor holds (running, or queued again for another attempt) is left to finish and the answer
/// is <see cref="CancelOutcome.NotCancellable"/> with <c>running</c> (a batch's cancel).
/// </summary>
public sealed record CancelInferenceJob(Guid JobId, JobRoute Route, string ObservedStatus, string CancelledBy, DateTimeOffset Now, bool QueuedOnly = false)
    : ICommand<CancelOutcome>;

/// <summary>What became of a cancel.</summary>
public abstract record CancelOutcome
{
    /// <summary>
    /// The job is cancelled (by this call, or it was already): it will never run. <paramref name="At"/>:
    /// the time of the cancel the log holds (this call's, or that of a cancel that came first); null
    /// when the job was seen cancelled already.
    /// </summary>
    public sealed record Cancelled(DateTimeOffset? At = null) : CancelOutcome;

    /// <summary>
    /// The job was running (a processor held its claim): its cancel is its ending on the log, and
    /// the processor running it was told to abort the run.
    /// </summary>
    public sealed record CancelRequested(DateTimeOffset At) : CancelOutcome;

    /// <summary>The job has ended (in <paramref name="Status"/>): it cannot be cancelled.</summary>
    public sealed record NotCancellable(string Status) : CancelOutcome;
}

/// <summary>
/// The cancel rules. A queued job that no processor claimed yet is cancelled by its claim and never
/// runs. A job a processor claimed (running, or queued again for another attempt) is cancelled by its
/// ending: the cancel is published under the job's one terminal message id, so it and the run's own
/// ending race for one place on the log, and whichever the log stored first is the job's ending.
/// </summary>
internal static class CancelDecision
{
    /// <summary>The answer known without claiming, or null when the cancel must try.</summary>
    public static CancelOutcome? Before(string observedStatus) => observedStatus switch
    {
        JobStatuses.Cancelled => new CancelOutcome.Cancelled(),
        JobStatuses.Queued or JobStatuses.Running => null,
        _ => new CancelOutcome.NotCancellable(observedStatus),
    };

    /// <summary>The answer for a job a processor holds, from the ending the log stored first.</summary>
    public static CancelOutcome AfterEnding(object stored) => stored is V1.JobCancelled cancelled
        ? new CancelOutcome.CancelRequested(cancelled.CancelledAt)
        : new CancelOutcome.NotCancellable(JobLifecycle.StatusAfter(stored));
}

/// <summary>
/// Cancels a job. A queued job is claimed for the cancel and, when the cancel holds the claim,
/// <see cref="V1.JobCancelled"/> is published under the job's terminal message id. Publishing again
/// for a claim an earlier cancel won is harmless (the log keeps one) and repairs a cancel whose
/// process died between the claim and the publish; a processor that finds the claim does the same.
/// A job a processor holds is cancelled by <see cref="CancelRunningAsync"/>.
/// </summary>
public sealed class CancelInferenceJobHandler(IJobClaims claims, IRunCancels runs) : ICommandHandler<CancelInferenceJob, CancelOutcome>
{
    public async ValueTask<CancelOutcome> Handle(CancelInferenceJob command, CancellationToken cancellationToken)
    {
        if (CancelDecision.Before(command.ObservedStatus) is { } known)
        {
            return known;
        }

        if (command.ObservedStatus == JobStatuses.Queued
            && await claims.ClaimForCancelAsync(command.JobId, command.Route.Series, cancellationToken) != ClaimOutcome.Running)
        {
            // The log keeps one ending: of cancels at once, every answer names the one it stored.
            var stored = await runs.EndAsync(command.Route, Cancelled(command), cancellationToken);
            return stored is V1.JobCancelled first
                ? new CancelOutcome.Cancelled(first.CancelledAt)
                : new CancelOutcome.NotCancellable(JobLifecycle.StatusAfter(stored));
        }

        // Seen queued or running, a processor holds it: a queued-only cancel leaves it to finish.
        return command.QueuedOnly
            ? new CancelOutcome.NotCancellable(JobStatuses.Running)
            : await CancelRunningAsync(command, cancellationToken);
    }

    /// <summary>
    /// A job a processor holds: first its claim becomes 'cancelled', so that no later delivery of it
    /// runs (a processor that dies mid-run hands it back; the gate then ends it cancelled); then the
    /// cancel is offered to the log as the job's ending. Only if the log kept it is the processor
    /// told to abort the run (its own ending, published later under the same id, is dropped);
    /// otherwise the run's ending came first and stands.
    /// </summary>
    private async ValueTask<CancelOutcome> CancelRunningAsync(CancelInferenceJob command, CancellationToken ct)
    {
        await runs.MarkCancelledAsync(command.JobId, command.Route.Series, ct);
        var stored = await runs.EndAsync(command.Route, Cancelled(command), ct);
        var outcome = CancelDecision.AfterEnding(stored);
        if (outcome is CancelOutcome.CancelRequested)
        {
            await runs.AbortRunAsync(command.Route, command.JobId, ct);
        }

        return outcome;
    }

    /// <summary>The cancel, in the attempt series the caller saw the job in (its ids are that series').</summary>
    private static object Cancelled(CancelInferenceJob command) =>
        JobLifecycle.InSeries(new V1.JobCancelled(command.JobId, command.Now, command.CancelledBy), command.Route.Series);
}

/// <summary>What cancelling a job a processor holds needs from the transport.</summary>
public interface IRunCancels
{
    /// <summary>Sets the claim of the job's attempt series to 'cancelled' whoever held it, so that no later delivery of it runs.</summary>
    Task MarkCancelledAsync(Guid jobId, int series, CancellationToken ct);

    /// <summary>
    /// Publishes a terminal event under the job's terminal message id and returns the ending the
    /// log holds for the job: this event if it was the first, else the one stored before it.
    /// </summary>
    Task<object> EndAsync(JobRoute job, object terminal, CancellationToken ct);

    /// <summary>Tells the processors to abort the job's run if one of them is running it (at most once, not stored).</summary>
    Task AbortRunAsync(JobRoute job, Guid jobId, CancellationToken ct);
}
