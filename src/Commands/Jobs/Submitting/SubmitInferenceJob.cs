using CqrsInference.Commands.Models;
using Mediator;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Commands.Jobs.Submitting;

/// <summary>
/// Submit a job: the request already parsed into tensors, with its id (chosen by the caller, so it
/// can listen for the job's events before submitting) and the clock it runs under.
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
    DateTimeOffset? Deadline = null) : ICommand<SubmitOutcome>;

/// <summary>
/// Decide, admit, then make durable: the pure decision first (nothing stored for an invalid job),
/// then quota and queue depth, the idempotency look-up, large inputs to the object store, and the
/// queue publish (the job is durable from here; that acknowledgement is the 202).
/// </summary>
public sealed partial class SubmitInferenceJobHandler(
    ModelCatalog catalog,
    IJobQueue queue,
    IIdempotencyRecords idempotency,
    IAcceptedJobs acceptedJobs,
    ISubmitAdmission admission,
    IClaimCheck claimCheck,
    SubmitOptions options,
    ILogger<SubmitInferenceJobHandler> logger) : ICommandHandler<SubmitInferenceJob, SubmitOutcome>
{
    public async ValueTask<SubmitOutcome> Handle(SubmitInferenceJob command, CancellationToken cancellationToken)
    {
        var decided = SubmitDecision.Decide(catalog, command, options);
        if (decided is not SubmitOutcome.Accepted accepted)
        {
            return decided;
        }

        if (await admission.RefuseAsync(command.Tenant, accepted.Job.Model, cancellationToken) is { } refused)
        {
            return refused;
        }

        if (command.IdempotencyKey is not null
            && await idempotency.FindDigestAsync(command.JobId, command.Tenant, cancellationToken) is { } digest)
        {
            return digest == command.RequestDigest ? accepted with { Replayed = true } : new SubmitOutcome.IdempotencyConflict(command.JobId);
        }

        using var activity = Telemetry.Source.StartActivity("jobs.submit", System.Diagnostics.ActivityKind.Producer);
        activity?.SetTag(Telemetry.JobIdTag, command.JobId.ToString());
        activity?.SetTag("cqrsi.model", accepted.Job.Model);

        // Large inputs go to the object store first; the queued message carries their reference.
        var (inline, reference) = await claimCheck.OffloadAsync(accepted.Job.Inputs, cancellationToken);
        var job = accepted.Job with { Inputs = inline, InputsRef = reference };
        var (duplicate, inputBytes) = await queue.PublishAsync(job, cancellationToken);
        LogAccepted(logger, job.JobId, job.Model, job.Region, duplicate);
        if (!duplicate)
        {
            Telemetry.JobsSubmitted.Add(1, new("model", job.Model), new("region", job.Region));
        }

        // The job is durable now; the recorder records its submission from the event log. Until
        // then it reads as queued from the API's memory (docs/ARCHITECTURE.md).
        acceptedJobs.Accepted(job.ToSubmitted(inputBytes));
        return new SubmitOutcome.Accepted(job, Replayed: duplicate);
    }

    [LoggerMessage(LogLevel.Debug, "Job {JobId} accepted for {Model} in {Region} (duplicate: {Duplicate})")]
    private static partial void LogAccepted(ILogger logger, Guid jobId, string model, string region, bool duplicate);
}
