namespace CqrsInference.Commands.Jobs;

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
    public const string JobRetried = "v1.job_retried";
    public const string JobShadowResult = "v1.job_shadow_result";
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
        [JobRetried] = typeof(V1.JobRetried),
        [JobShadowResult] = typeof(V1.JobShadowResult),
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
        V1.JobRetried e => e.JobId,
        V1.JobShadowResult e => e.JobId,
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
        V1.JobRetried => JobRetried,
        V1.JobShadowResult => JobShadowResult,
        V1.ProcessorOnline => ProcessorOnline,
        V1.ProcessorHeartbeat => ProcessorHeartbeat,
        V1.ProcessorOffline => ProcessorOffline,
        _ => throw new ArgumentException($"Not a lifecycle event: {@event.GetType().Name}", nameof(@event)),
    };
}
