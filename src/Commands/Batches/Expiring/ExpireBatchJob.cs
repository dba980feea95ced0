using CqrsInference.Commands.Jobs;
using Mediator;

namespace CqrsInference.Commands.Batches.Expiring;

/// <summary>
/// End a queued job of a batch whose deadline passed: it expires (<see cref="V1.JobExpired"/>) and never
/// runs. The same claim as a cancel decides (<see cref="IJobClaims.ClaimForCancelAsync"/>): a processor
/// that claimed it first runs it, and its ending stands (a run that started before the deadline).
/// </summary>
public sealed record ExpireBatchJob(Guid JobId, JobRoute Route, DateTimeOffset Deadline, DateTimeOffset Now) : ICommand<bool>;

/// <summary>Claims the job and publishes its expiry under the job's terminal message id; true when the job will not run.</summary>
public sealed class ExpireBatchJobHandler(IJobClaims claims, IEventLog log) : ICommandHandler<ExpireBatchJob, bool>
{
    public const string Worker = "batch-deadline";

    public async ValueTask<bool> Handle(ExpireBatchJob command, CancellationToken cancellationToken)
    {
        if (await claims.ClaimForCancelAsync(command.JobId, command.Route.Series, cancellationToken) == ClaimOutcome.Running)
        {
            return false;
        }

        await log.AppendAsync(command.Route, new V1.JobExpired(command.JobId, command.Deadline, command.Now, Worker), trace: null, cancellationToken);
        return true;
    }
}
