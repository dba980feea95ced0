using System.Text;
using System.Text.Json;
using CqrsInference.Commands.Messaging;
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

public abstract record SubmitOutcome
{
    /// <summary>The job is durable in the queue (or was already, for a retried idempotent submit).</summary>
    public sealed record Accepted(JobCommand Job, bool Replayed) : SubmitOutcome;

    /// <summary>The request breaks the model's contract; nothing was stored.</summary>
    public sealed record Rejected(IReadOnlyDictionary<string, string[]> Errors) : SubmitOutcome;

    /// <summary>The model is not served here.</summary>
    public sealed record UnknownModel(string Model) : SubmitOutcome;

    /// <summary>The Idempotency-Key was used before with a different request.</summary>
    public sealed record IdempotencyConflict(Guid ExistingJobId) : SubmitOutcome;
}

/// <summary>Where the API looks for and records submissions (the event store).</summary>
public interface ISubmissionStore
{
    /// <summary>The request digest of a job already recorded, or null.</summary>
    Task<string?> FindDigestAsync(Guid jobId, string tenant, CancellationToken ct);

    /// <summary>
    /// Records the submission so that the job reads as queued at once. Best effort: the job is
    /// already durable in JetStream, and the recorder records it from the event log if this fails.
    /// </summary>
    Task TryRecordAsync(V1.JobSubmitted submitted, CancellationToken ct);
}

public static class SubmitDecision
{
    /// <summary>The pure decision: the queue message for a valid command, or what is wrong with it.</summary>
    public static SubmitOutcome Decide(ModelCatalog catalog, SubmitInferenceJob command, Guid jobId, string defaultRegion)
    {
        if (!catalog.TryGet(command.Model, out var model))
        {
            return new SubmitOutcome.UnknownModel(command.Model);
        }

        var errors = new Dictionary<string, string[]>();
        var region = command.Region ?? defaultRegion;
        if (!Naming.IsToken(region))
        {
            errors["region"] = [$"Region must match {Naming.TokenPattern}."];
        }

        var priority = command.Priority ?? Priorities.Interactive;
        if (!Priorities.All.Contains(priority))
        {
            errors["priority"] = [$"Priority must be one of: {string.Join(", ", Priorities.All)}."];
        }

        foreach (var (field, message) in TensorValidator.Validate(model, command.Inputs))
        {
            errors[field] = errors.TryGetValue(field, out var existing) ? [.. existing, message] : [message];
        }

        if (command.Deadline is { } deadline && deadline <= command.Now)
        {
            errors["deadline"] = [$"deadline {deadline:O} has already passed."];
        }

        if (errors.Count > 0)
        {
            return new SubmitOutcome.Rejected(errors);
        }

        return new SubmitOutcome.Accepted(
            new JobCommand(jobId, command.Tenant, model.Name, model.Version, region, priority, command.Now,
                command.RequestDigest, command.Inputs, command.Metadata, Webhook: command.Webhook, Deadline: command.Deadline),
            Replayed: false);
    }
}

public static class Priorities
{
    public const string Interactive = "interactive";
    public const string Batch = "batch";
    public static readonly IReadOnlyList<string> All = [Interactive, Batch];
}

public sealed partial class SubmitInferenceJobHandler(
    ModelCatalog catalog,
    IJobQueue queue,
    ISubmissionStore store,
    ClaimCheck claimCheck,
    SubmitOptions options,
    ILogger<SubmitInferenceJobHandler> logger) : ICommandHandler<SubmitInferenceJob, SubmitOutcome>
{
    public async ValueTask<SubmitOutcome> Handle(SubmitInferenceJob command, CancellationToken cancellationToken)
    {
        var jobId = command.JobId;
        var outcome = SubmitDecision.Decide(catalog, command, jobId, options.Region);
        if (outcome is not SubmitOutcome.Accepted accepted)
        {
            return outcome;
        }

        if (command.IdempotencyKey is not null)
        {
            var digest = await store.FindDigestAsync(jobId, command.Tenant, cancellationToken);
            if (digest is not null)
            {
                return digest == command.RequestDigest
                    ? accepted with { Replayed = true }
                    : new SubmitOutcome.IdempotencyConflict(jobId);
            }
        }

        using var activity = Telemetry.Source.StartActivity("jobs.submit", System.Diagnostics.ActivityKind.Producer);
        activity?.SetTag(Telemetry.JobIdTag, jobId.ToString());
        activity?.SetTag("cqrsi.model", accepted.Job.Model);

        // Large inputs go to the object store first; the queued message carries their reference.
        var (inline, reference) = await claimCheck.OffloadAsync(accepted.Job.Inputs, cancellationToken);
        accepted = accepted with { Job = accepted.Job with { Inputs = inline, InputsRef = reference } };
        var (duplicate, inputBytes) = await queue.PublishAsync(accepted.Job, cancellationToken);
        LogAccepted(logger, jobId, accepted.Job.Model, accepted.Job.Region, duplicate);
        if (!duplicate)
        {
            Telemetry.JobsSubmitted.Add(1, new("model", accepted.Job.Model), new("region", accepted.Job.Region));
        }


        // The job is durable now. Recording it here only makes it visible at once; if this fails,
        // the recorder records the same event from the event log (docs/ARCHITECTURE.md).
        await store.TryRecordAsync(accepted.Job.ToSubmitted(inputBytes), cancellationToken);
        return accepted with { Replayed = duplicate };
    }

    [LoggerMessage(LogLevel.Debug, "Job {JobId} accepted for {Model} in {Region} (duplicate: {Duplicate})")]
    private static partial void LogAccepted(ILogger logger, Guid jobId, string model, string region, bool duplicate);
}

public sealed class SubmitOptions
{
    /// <summary>Region of jobs that name none: the API instance's own region.</summary>
    public string Region { get; set; } = "local";
}

public static class JobIds
{
    /// <summary>The id of a new job: derived from its Idempotency-Key, else time-ordered (UUIDv7).</summary>
    public static Guid For(string tenant, string? idempotencyKey, DateTimeOffset now) =>
        idempotencyKey is { } key ? DeterministicGuid.ForIdempotencyKey(tenant, key) : Guid.CreateVersion7(now);
}

public static class RequestDigest
{
    /// <summary>SHA-256 of the request body, to tell a retried submit from a different one.</summary>
    public static string Of(ReadOnlySpan<byte> body) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(body));

    public static string Of(string body) => Of(Encoding.UTF8.GetBytes(body));

    public static string Of(JsonElement body) => Of(JsonSerializer.SerializeToUtf8Bytes(body));
}
