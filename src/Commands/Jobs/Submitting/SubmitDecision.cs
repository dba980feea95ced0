using CqrsInference.Commands.Models;

namespace CqrsInference.Commands.Jobs.Submitting;

/// <summary>What became of a submit.</summary>
public abstract record SubmitOutcome
{
    /// <summary>
    /// The job is durable in the queue (or was already, for a retried idempotent submit), or, with
    /// <paramref name="ServedIn"/>, a processor of that region ran it on the interactive path and its
    /// ending is on the event log.
    /// </summary>
    /// <summary>
    /// An accepted job: <paramref name="Replayed"/> when it was submitted before (a retry);
    /// <paramref name="ServedIn"/> the region whose processor ran it interactively; <paramref name="Taken"/>
    /// when an interactive run of it claimed it first and this request did not run it: whoever
    /// answers follows the job and queues it unless it ends (<see cref="JobIntake.QueueTakenAsync"/>).
    /// </summary>
    public sealed record Accepted(JobCommand Job, bool Replayed, string? ServedIn = null, bool Taken = false) : SubmitOutcome;

    /// <summary>Every job of a bulk submit is durable in its queue, in the order submitted.</summary>
    public sealed record AcceptedAll(IReadOnlyList<Accepted> Jobs) : SubmitOutcome;

    /// <summary>The tenant is over its submit rate; it may try again after <paramref name="RetryAfter"/>.</summary>
    public sealed record RateLimited(TimeSpan RetryAfter) : SubmitOutcome;

    /// <summary>The request breaks the model's contract; nothing was stored.</summary>
    public sealed record Rejected(IReadOnlyDictionary<string, string[]> Errors) : SubmitOutcome;

    /// <summary>The model is not served here.</summary>
    public sealed record UnknownModel(string Model) : SubmitOutcome;

    /// <summary>The job pins a version of the model that is not served (absent or retired); <see cref="VersionResolution.VersionNotServed.Detail"/> names those that are.</summary>
    public sealed record VersionNotServed(VersionResolution.VersionNotServed Refusal) : SubmitOutcome;

    /// <summary>The Idempotency-Key was used before with a different request.</summary>
    public sealed record IdempotencyConflict(Guid ExistingJobId) : SubmitOutcome;

    /// <summary>The tenant has used its daily quota; it resets after <paramref name="RetryAfter"/>.</summary>
    public sealed record QuotaExhausted(long Limit, TimeSpan RetryAfter) : SubmitOutcome;

    /// <summary>
    /// The tenant's jobs waiting for the model are more than the deployment takes from one tenant
    /// (<c>Submit:MaxQueueDepth</c>), or, with
    /// <paramref name="Setting"/>, the work queue of every model is at its own limit (that setting);
    /// try again later.
    /// </summary>
    public sealed record QueueFull(string Model, long Depth, long Limit, string? Setting = null) : SubmitOutcome
    {
        /// <summary>What the refusal says.</summary>
        public string Detail => Setting is null
            ? $"{Depth} of this tenant's jobs wait for model '{Model}' (the limit per tenant is {Limit}); retry later."
            : $"The job queue is full: it holds {Depth:N0}, its limit {Setting} is {Limit:N0}; retry later.";
    }
}

/// <summary>The submit rules, as a pure function: a valid command becomes its queue message.</summary>
public static class SubmitDecision
{
    public static SubmitOutcome Decide(ModelCatalog catalog, SubmitInferenceJob command, SubmitOptions options)
    {
        ModelDefinition model;
        switch (catalog.Resolve(command.Model, command.ModelVersion, command.JobId))
        {
            case VersionResolution.Resolved resolved:
                model = resolved.Model;
                break;
            case VersionResolution.VersionNotServed refusal:
                return new SubmitOutcome.VersionNotServed(refusal);
            default:
                return new SubmitOutcome.UnknownModel(command.Model);
        }

        // At most FieldErrors.MaxListed faults listed, the rest counted: a body of 100,000 inputs the
        // model does not have answered every one of them (8 MB).
        var errors = new FieldErrors();
        void Error(string field, string message) => errors.Add(field, message);

        var region = command.Region ?? options.Region;
        if (!Naming.IsToken(region))
        {
            Error("region", $"A region is {Naming.TokenRule}.");
        }
        else if (!options.ServedRegions.Contains(region))
        {
            Error("region", $"Region '{Shown.Cut(region)}' is not served here; the regions are: {string.Join(", ", options.ServedRegions)}.");
        }

        var priority = command.Priority ?? Priorities.Interactive;
        if (!Priorities.All.Contains(priority))
        {
            Error("priority", $"Priority must be one of: {string.Join(", ", Priorities.All)}.");
        }

        foreach (var (field, message) in TensorValidator.Validate(model, command.Inputs))
        {
            Error(field, message);
        }

        foreach (var (field, message) in WhenAndWhereErrors(model, command, options))
        {
            Error(field, message);
        }

        return errors.Count > 0
            ? new SubmitOutcome.Rejected(errors.ToDictionary())
            : new SubmitOutcome.Accepted(
                new JobCommand(command.JobId, command.Tenant, model.Name, model.Version, region, priority, command.Now,
                    command.RequestDigest, command.Inputs, command.Metadata, Webhook: command.Webhook, Deadline: command.Deadline,
                    TimeoutMs: command.Timeout is { } timeout ? (int)Math.Ceiling(timeout.TotalMilliseconds) : null, WebhookEvents: command.WebhookEvents, Batch: command.Batch),
                Replayed: false);
    }

    /// <summary>The rules of the job's deadline, execution timeout and webhook.</summary>
    private static IEnumerable<(string Field, string Message)> WhenAndWhereErrors(ModelDefinition model, SubmitInferenceJob command, SubmitOptions options)
    {
        if (command.Deadline is { } deadline && deadline <= command.Now)
        {
            yield return ("deadline", $"deadline {deadline:O} has already passed.");
        }

        if (TimeoutRefusal(model, command.Timeout) is { } timeoutRefusal)
        {
            yield return ("timeout", timeoutRefusal);
        }

        if (command.Webhook is not null && !options.WebhooksEnabled)
        {
            yield return ("webhook", "Webhooks are not enabled on this deployment (Webhooks:SigningKey is not set).");
        }
        else if (command.Webhook is not null && options.WebhookAddresses.Refusal(command.Webhook) is { } refusal)
        {
            yield return ("webhook", refusal);
        }

        if (command.WebhookEvents is { } filter && (command.Webhook is null ? "webhookEvents needs a webhook to call." : Webhooks.WebhookEvents.Refusal(filter)) is { } filterRefusal)
        {
            yield return ("webhookEvents", filterRefusal);
        }
    }

    /// <summary>Why a job may not ask for <paramref name="timeout"/>: at least 1 ms, at most the model's <c>timeoutMs</c>.</summary>
    public static string? TimeoutRefusal(ModelDefinition model, TimeSpan? timeout) => timeout switch
    {
        null => null,
        { TotalMilliseconds: < 1 } => "timeout must be at least 1ms.",
        { } t when Math.Ceiling(t.TotalMilliseconds) > model.ExecutionTimeoutMs =>
            $"timeout {(long)Math.Ceiling(t.TotalMilliseconds)} ms is over model '{model.Name}''s cap of {model.ExecutionTimeoutMs} ms; ask for at most {model.ExecutionTimeoutMs}ms.",
        _ => null,
    };
}
