using Mediator;

namespace CqrsInference.Commands.Jobs.Cancelling;

/// <summary>
/// Cancel a job. The caller has read the job (it exists and is the tenant's) and passes the status
/// it saw and where the job's events go; the claim decides what actually happens.
/// </summary>
public sealed record CancelInferenceJob(Guid JobId, JobRoute Route, string ObservedStatus, string CancelledBy, DateTimeOffset Now)
    : ICommand<CancelOutcome>;

/// <summary>What became of a cancel.</summary>
public abstract record CancelOutcome
{
    /// <summary>The job is cancelled (by this call, or it was already): it will never run.</summary>
    public sealed record Cancelled : CancelOutcome;

    /// <summary>The job is running or has ended: it cannot be cancelled.</summary>
    public sealed record NotCancellable(string Status) : CancelOutcome;
}

/// <summary>The cancel rules: only a queued job can be cancelled, and only if no processor claimed it first.</summary>
internal static class CancelDecision
{
    /// <summary>The answer known without claiming, or null when the job must be claimed.</summary>
    public static CancelOutcome? BeforeClaim(string observedStatus) => observedStatus switch
    {
        JobStatuses.Cancelled => new CancelOutcome.Cancelled(),
        JobStatuses.Queued => null,
        _ => new CancelOutcome.NotCancellable(observedStatus),
    };

    /// <summary>The answer once the claim is decided.</summary>
    public static CancelOutcome AfterClaim(ClaimOutcome claim) =>
        claim == ClaimOutcome.Running ? new CancelOutcome.NotCancellable(JobStatuses.Running) : new CancelOutcome.Cancelled();
}

/// <summary>
/// Claims the job for a cancel and, when the cancel holds the claim, publishes <see cref="V1.JobCancelled"/>
/// under the job's terminal message id. Publishing again for a claim an earlier cancel won is harmless
/// (the log keeps one) and repairs a cancel whose process died between the claim and the publish; a
/// processor that finds the claim does the same.
/// </summary>
public sealed class CancelInferenceJobHandler(IJobClaims claims, IEventLog log) : ICommandHandler<CancelInferenceJob, CancelOutcome>
{
    public async ValueTask<CancelOutcome> Handle(CancelInferenceJob command, CancellationToken cancellationToken)
    {
        if (CancelDecision.BeforeClaim(command.ObservedStatus) is { } known)
        {
            return known;
        }

        var claim = await claims.ClaimForCancelAsync(command.JobId, cancellationToken);
        if (claim != ClaimOutcome.Running)
        {
            await log.AppendAsync(command.Route, new V1.JobCancelled(command.JobId, command.Now, command.CancelledBy), trace: null, cancellationToken);
        }

        return CancelDecision.AfterClaim(claim);
    }
}
