using Mediator;

namespace CqrsInference.Commands.Jobs.Submitting;

/// <summary>
/// Submit a job: the request already parsed into tensors, with its id (chosen by the caller, so it
/// can listen for the job's events before submitting) and the clock it runs under.
/// <paramref name="Timeout"/>: the execution timeout asked for, at most the model's.
/// <paramref name="InteractiveWithin"/>: run it on the interactive path (NATS request/reply to a
/// processor, docs/ARCHITECTURE.md), the caller waiting at most this long; null queues it.
/// <paramref name="WebhookEvents"/>: when the webhook is called (<see cref="Webhooks.WebhookEvents"/>; null: on completion).
/// <paramref name="Batch"/>: the batch line the job is (null for a job on its own).
/// <paramref name="ModelVersion"/>: the version the job pins (null: the model's default, or the
/// weighted split, <see cref="Models.ModelCatalog.Resolve"/>).
/// </summary>
public sealed record SubmitInferenceJob(
    Guid JobId,
    string Tenant,
    string Model,
    string? Region,
    string? Priority,
    IReadOnlyList<Tensor> Inputs,
    IReadOnlyDictionary<string, string>? Metadata,
    string? IdempotencyKey,
    string RequestDigest,
    DateTimeOffset Now,
    string? Webhook = null,
    DateTimeOffset? Deadline = null,
    TimeSpan? Timeout = null,
    TimeSpan? InteractiveWithin = null,
    IReadOnlyList<string>? WebhookEvents = null,
    BatchLine? Batch = null,
    string? ModelVersion = null) : ICommand<SubmitOutcome>;

/// <summary>
/// Submit many jobs of one tenant together (a bulk submit): accepted or refused together, each job
/// with its own id, under the same rules and limits, per job, as a single submit.
/// </summary>
public sealed record SubmitInferenceJobs(IReadOnlyList<SubmitInferenceJob> Jobs) : ICommand<SubmitOutcome>;

/// <summary>One job through the <see cref="JobIntake"/>.</summary>
public sealed class SubmitInferenceJobHandler(JobIntake intake) : ICommandHandler<SubmitInferenceJob, SubmitOutcome>
{
    public async ValueTask<SubmitOutcome> Handle(SubmitInferenceJob command, CancellationToken cancellationToken) =>
        await intake.SubmitAsync([command], bulk: false, cancellationToken) switch
        {
            SubmitOutcome.AcceptedAll all => all.Jobs[0],
            var other => other,
        };
}

/// <summary>Many jobs through the <see cref="JobIntake"/>, together.</summary>
public sealed class SubmitInferenceJobsHandler(JobIntake intake) : ICommandHandler<SubmitInferenceJobs, SubmitOutcome>
{
    public async ValueTask<SubmitOutcome> Handle(SubmitInferenceJobs command, CancellationToken cancellationToken) =>
        await intake.SubmitAsync(command.Jobs, bulk: true, cancellationToken);
}
