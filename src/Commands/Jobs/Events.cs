using System.Text.Json;

namespace CqrsInference.Commands.Jobs;

/// <summary>
/// Version 1 of the job lifecycle events. The wire names (<see cref="EventNames"/>) do not depend on
/// the CLR names because these events cross NATS and then live in the Marten event store for good.
/// </summary>
public static partial class V1
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
        string? Webhook = null,
        DateTimeOffset? Deadline = null);

    /// <summary>
    /// A processor took a delivery of the job and began to run it (one per attempt), in
    /// <paramref name="RanInRegion"/> (the processor's region); <paramref name="Overflowed"/> when that
    /// is not the job's home region (idle capacity elsewhere took it from a backlog).
    /// </summary>
    public sealed record JobStarted(
        Guid JobId,
        int Attempt,
        string Worker,
        string Device,
        DateTimeOffset StartedAt,
        double QueueWaitMs,
        JobContext? Context = null,
        string? RanInRegion = null,
        bool Overflowed = false);

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
        Messaging.BlobRef? OutputsRef = null,
        JobContext? Context = null);

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
        bool DeadLettered,
        JobContext? Context = null);

    /// <summary>A processor came online and can take work.</summary>
    public sealed record ProcessorOnline(string WorkerId, string Region, string DeviceClass, int Slots, IReadOnlyList<string> Models, DateTimeOffset At);

    /// <summary>
    /// A processor is alive. <paramref name="OnlineSeconds"/> and <paramref name="BusySeconds"/> are
    /// the time since its previous heartbeat and the inference time (summed over slots) in it: the
    /// denominator and numerator of utilization.
    /// </summary>
    public sealed record ProcessorHeartbeat(string WorkerId, string Region, string DeviceClass, int Slots, DateTimeOffset At, double OnlineSeconds, double BusySeconds);

    /// <summary>A processor went away: it said so (<c>shutdown</c>) or stopped heartbeating (<c>timeout</c>).</summary>
    public sealed record ProcessorOffline(string WorkerId, DateTimeOffset At, string Reason);

    /// <summary>Terminal: still queued when its deadline passed; it never ran.</summary>
    public sealed record JobExpired(Guid JobId, DateTimeOffset Deadline, DateTimeOffset ExpiredAt, string Worker);

    /// <summary>Terminal: cancelled while still queued (it won the job's claim, so no processor ran it).</summary>
    public sealed record JobCancelled(Guid JobId, DateTimeOffset CancelledAt, string CancelledBy);
}

/// <summary>Who and what a lifecycle event is about, so roll-ups can group it without the job's stream.</summary>
public sealed record JobContext(string Tenant, string Model, string Region, string DeviceClass);

/// <summary>The versioned wire names of the events, shared by NATS headers and Marten.</summary>
public static class EventNames
{
    public const string JobSubmitted = "v1.job_submitted";
    public const string JobStarted = "v1.job_started";
    public const string JobAttemptFailed = "v1.job_attempt_failed";
    public const string JobSucceeded = "v1.job_succeeded";
    public const string JobFailed = "v1.job_failed";
    public const string JobCancelled = "v1.job_cancelled";
    public const string JobExpired = "v1.job_expired";
    public const string ProcessorOnline = "v1.processor_online";
    public const string ProcessorHeartbeat = "v1.processor_heartbeat";
    public const string ProcessorOffline = "v1.processor_offline";

    /// <summary>Every lifecycle event type with its wire name.</summary>
    public static readonly IReadOnlyDictionary<string, Type> Types = new Dictionary<string, Type>
    {
        [JobSubmitted] = typeof(V1.JobSubmitted),
        [JobStarted] = typeof(V1.JobStarted),
        [JobAttemptFailed] = typeof(V1.JobAttemptFailed),
        [JobSucceeded] = typeof(V1.JobSucceeded),
        [JobFailed] = typeof(V1.JobFailed),
        [JobCancelled] = typeof(V1.JobCancelled),
        [JobExpired] = typeof(V1.JobExpired),
        [ProcessorOnline] = typeof(V1.ProcessorOnline),
        [ProcessorHeartbeat] = typeof(V1.ProcessorHeartbeat),
        [ProcessorOffline] = typeof(V1.ProcessorOffline),
    };

    private static readonly Guid ProcessorNamespace = new("3c0f6e1a-7a43-4b7e-9d2c-5f1e8a2b9c44");

    /// <summary>The event stream of a processor (capacity facts), by its worker id.</summary>
    public static Guid ProcessorStreamId(string workerId) => DeterministicGuid.Create(ProcessorNamespace, workerId);

    /// <summary>Whether the event is a processor's capacity fact rather than a job's lifecycle.</summary>
    public static bool IsProcessorEvent(object @event) => @event is V1.ProcessorOnline or V1.ProcessorHeartbeat or V1.ProcessorOffline;

    /// <summary>The stream an event belongs to: its job's, or its processor's.</summary>
    public static Guid StreamIdOf(object @event) => @event switch
    {
        V1.ProcessorOnline e => ProcessorStreamId(e.WorkerId),
        V1.ProcessorHeartbeat e => ProcessorStreamId(e.WorkerId),
        V1.ProcessorOffline e => ProcessorStreamId(e.WorkerId),
        _ => JobIdOf(@event),
    };

    /// <summary>Whether the wire name is one of a job's terminal events.</summary>
    public static bool IsTerminal(string? type) => type is JobSucceeded or JobFailed or JobCancelled or JobExpired;

    /// <summary>The job a lifecycle event belongs to.</summary>
    public static Guid JobIdOf(object @event) => @event switch
    {
        V1.JobSubmitted e => e.JobId,
        V1.JobStarted e => e.JobId,
        V1.JobAttemptFailed e => e.JobId,
        V1.JobSucceeded e => e.JobId,
        V1.JobFailed e => e.JobId,
        V1.JobCancelled e => e.JobId,
        V1.JobExpired e => e.JobId,
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
        V1.JobExpired => JobExpired,
        V1.ProcessorOnline => ProcessorOnline,
        V1.ProcessorHeartbeat => ProcessorHeartbeat,
        V1.ProcessorOffline => ProcessorOffline,
        _ => throw new ArgumentException($"Not a lifecycle event: {@event.GetType().Name}", nameof(@event)),
    };
}

/// <summary>
/// A tensor in the Open Inference Protocol (KServe v2) layout: <c>data</c> is the flat, row-major
/// element list (nested arrays are flattened on the way in).
/// </summary>
public sealed record Tensor(string Name, string Datatype, long[] Shape, JsonElement Data);
