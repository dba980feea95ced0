using System.Text.Json;

namespace CqrsInference.Commands.Jobs;

/// <summary>
/// Version 1 of the job lifecycle events. The wire names (<see cref="EventNames"/>) do not depend on
/// the CLR names because these events cross NATS and then live in the Marten event store for good.
/// </summary>
public static class V1
{
    /// <summary>A job was accepted by the API and made durable in the work queue.</summary>
    public sealed record JobSubmitted(
        Guid JobId,
        string Tenant,
        string Model,
        string ModelVersion,
        string Region,
        string Priority,
        DateTimeOffset SubmittedAt,
        string RequestDigest,
        int InputBytes,
        IReadOnlyDictionary<string, string>? Metadata,
        Messaging.BlobRef? InputsRef = null,
        string? Webhook = null);

    /// <summary>A processor took a delivery of the job and began to run it (one per attempt).</summary>
    public sealed record JobStarted(
        Guid JobId,
        int Attempt,
        string Worker,
        string Device,
        DateTimeOffset StartedAt,
        double QueueWaitMs);

    /// <summary>An attempt failed with a fault that may pass; the job goes back to the queue.</summary>
    public sealed record JobAttemptFailed(
        Guid JobId,
        int Attempt,
        string Worker,
        string Device,
        DateTimeOffset FailedAt,
        string ErrorCode,
        string Reason,
        TimeSpan RetryAfter);

    /// <summary>Terminal: the model ran and produced outputs.</summary>
    public sealed record JobSucceeded(
        Guid JobId,
        int Attempt,
        string Worker,
        string Device,
        DateTimeOffset CompletedAt,
        double RunMs,
        int BatchSize,
        IReadOnlyList<Tensor> Outputs,
        Messaging.BlobRef? OutputsRef = null);

    /// <summary>
    /// Terminal: the job can never succeed (bad input the model refused) or ran out of attempts
    /// (<paramref name="DeadLettered"/>).
    /// </summary>
    public sealed record JobFailed(
        Guid JobId,
        int Attempt,
        string Worker,
        string Device,
        DateTimeOffset FailedAt,
        string ErrorCode,
        string Reason,
        bool DeadLettered);

    /// <summary>Terminal: cancelled while still queued (it won the job's claim, so no processor ran it).</summary>
    public sealed record JobCancelled(Guid JobId, DateTimeOffset CancelledAt, string CancelledBy);
}

/// <summary>The versioned wire names of the events, shared by NATS headers and Marten.</summary>
public static class EventNames
{
    public const string JobSubmitted = "v1.job_submitted";
    public const string JobStarted = "v1.job_started";
    public const string JobAttemptFailed = "v1.job_attempt_failed";
    public const string JobSucceeded = "v1.job_succeeded";
    public const string JobFailed = "v1.job_failed";
    public const string JobCancelled = "v1.job_cancelled";

    /// <summary>Every lifecycle event type with its wire name.</summary>
    public static readonly IReadOnlyDictionary<string, Type> Types = new Dictionary<string, Type>
    {
        [JobSubmitted] = typeof(V1.JobSubmitted),
        [JobStarted] = typeof(V1.JobStarted),
        [JobAttemptFailed] = typeof(V1.JobAttemptFailed),
        [JobSucceeded] = typeof(V1.JobSucceeded),
        [JobFailed] = typeof(V1.JobFailed),
        [JobCancelled] = typeof(V1.JobCancelled),
    };

    /// <summary>The job a lifecycle event belongs to.</summary>
    public static Guid JobIdOf(object @event) => @event switch
    {
        V1.JobSubmitted e => e.JobId,
        V1.JobStarted e => e.JobId,
        V1.JobAttemptFailed e => e.JobId,
        V1.JobSucceeded e => e.JobId,
        V1.JobFailed e => e.JobId,
        V1.JobCancelled e => e.JobId,
        _ => throw new ArgumentException($"Not a lifecycle event: {@event.GetType().Name}", nameof(@event)),
    };

    public static string Of(object @event) => @event switch
    {
        V1.JobSubmitted => JobSubmitted,
        V1.JobStarted => JobStarted,
        V1.JobAttemptFailed => JobAttemptFailed,
        V1.JobSucceeded => JobSucceeded,
        V1.JobFailed => JobFailed,
        V1.JobCancelled => JobCancelled,
        _ => throw new ArgumentException($"Not a lifecycle event: {@event.GetType().Name}", nameof(@event)),
    };
}

/// <summary>
/// A tensor in the Open Inference Protocol (KServe v2) layout: <c>data</c> is the flat, row-major
/// element list (nested arrays are flattened on the way in).
/// </summary>
public sealed record Tensor(string Name, string Datatype, long[] Shape, JsonElement Data);
