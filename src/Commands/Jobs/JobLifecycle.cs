using System.Globalization;

namespace CqrsInference.Commands.Jobs;

/// <summary>The job statuses of the public contract.</summary>
public static class JobStatuses
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
    public const string Expired = "expired";

    public static readonly IReadOnlyList<string> All = [Queued, Running, Succeeded, Failed, Cancelled, Expired];
}

/// <summary>
/// The rules of a job's life, in one place, for every part that needs them (the processor, the
/// cancel command, the recorder, the projection, the API):
/// <list type="bullet">
/// <item>which status each event leads to, and the terminal rule: once a job is succeeded, failed,
/// cancelled or expired, no later event changes it (a redelivered job's second result is dropped);</item>
/// <item>the message id each event is published under: JetStream drops a second publish of the same id
/// within its duplicate window, so a redelivered job cannot put two results on the log;</item>
/// <item>the id each event is recorded under in Marten: derived from what the event is about, never from
/// when it was made, so the same event recorded twice is one row (unique index);</item>
/// <item>how an ending is counted (a job that ran out of attempts is dead-lettered).</item>
/// </list>
/// </summary>
public static class JobLifecycle
{
    /// <summary>Whether a job in this status has ended for good.</summary>
    public static bool IsTerminal(string status) =>
        status is JobStatuses.Succeeded or JobStatuses.Failed or JobStatuses.Cancelled or JobStatuses.Expired;

    /// <summary>Whether the event ends its job.</summary>
    public static bool IsTerminal(object @event) => @event is V1.JobSucceeded or V1.JobFailed or V1.JobCancelled or V1.JobExpired;

    /// <summary>
    /// Whether the event is a shadow run's result (<see cref="V1.JobShadowResult"/>): about a job, in
    /// its stream, but never a change of it: recorded whatever the job's status (after its ending,
    /// as a rule), folded into nothing a caller sees, never terminal, never billed.
    /// </summary>
    public static bool IsShadow(object @event) => @event is V1.JobShadowResult;

    /// <summary>Whether the wire name is one of the events that end a job.</summary>
    public static bool IsTerminalEvent(string? type) =>
        type is EventNames.JobSucceeded or EventNames.JobFailed or EventNames.JobCancelled or EventNames.JobExpired;

    /// <summary>The status the event gives a job that has not ended yet.</summary>
    public static string StatusAfter(object @event) => @event switch
    {
        V1.JobSubmitted => JobStatuses.Queued,
        V1.JobRetried => JobStatuses.Queued,
        V1.JobStarted => JobStatuses.Running,
        V1.JobAttemptFailed => JobStatuses.Queued,
        V1.JobSucceeded => JobStatuses.Succeeded,
        V1.JobFailed => JobStatuses.Failed,
        V1.JobCancelled => JobStatuses.Cancelled,
        V1.JobExpired => JobStatuses.Expired,
        _ => throw new ArgumentException($"Not a job lifecycle event: {@event.GetType().Name}", nameof(@event)),
    };

    /// <summary>
    /// The status an event leads to, by its wire name alone (what a reader of the log's headers
    /// knows): as <see cref="StatusAfter(object)"/>; null for a name that is not a job lifecycle event.
    /// </summary>
    public static string? StatusAfter(string? type) => type switch
    {
        EventNames.JobSubmitted or EventNames.JobRetried or EventNames.JobAttemptFailed => JobStatuses.Queued,
        EventNames.JobStarted => JobStatuses.Running,
        EventNames.JobSucceeded => JobStatuses.Succeeded,
        EventNames.JobFailed => JobStatuses.Failed,
        EventNames.JobCancelled => JobStatuses.Cancelled,
        EventNames.JobExpired => JobStatuses.Expired,
        _ => null,
    };

    /// <summary>
    /// Whether the event changes a job in <paramref name="status"/> whose current attempt series is
    /// <paramref name="series"/>: a retry only a job that has ended, and only as the next series
    /// (a second request for the same series is the same retry); any other event only a job that
    /// has not ended, and only in its own series (a late redelivery of an earlier series, say its
    /// ending, never changes a later one). A shadow result changes no job (<see cref="IsShadow"/>).
    /// </summary>
    public static bool Changes(string status, int series, object @event) => @event switch
    {
        V1.JobSubmitted => false,
        V1.JobShadowResult => false,
        V1.JobRetried r => IsTerminal(status) && r.Series == series + 1,
        _ => !IsTerminal(status) && SeriesOf(@event) == series,
    };

    /// <summary>The attempt series a message or event names: null (the first series, and everything stored before retries) is 1.</summary>
    public static int SeriesOf(int? series) => series is > 1 ? series.Value : 1;

    /// <summary>The attempt series a job lifecycle event belongs to.</summary>
    public static int SeriesOf(object @event) => @event switch
    {
        V1.JobRetried e => e.Series,
        V1.JobStarted e => SeriesOf(e.Series),
        V1.JobAttemptFailed e => SeriesOf(e.Series),
        V1.JobSucceeded e => SeriesOf(e.Series),
        V1.JobFailed e => SeriesOf(e.Series),
        V1.JobCancelled e => SeriesOf(e.Series),
        V1.JobExpired e => SeriesOf(e.Series),
        V1.JobShadowResult e => SeriesOf(e.Series),
        _ => 1,
    };

    /// <summary>
    /// The event as it belongs to attempt series <paramref name="series"/> (the series of the queue
    /// message it is about): every event a run or a cancel publishes is put in its series here, once,
    /// before its ids are made. The first series is left unmarked, so its ids are those of before.
    /// </summary>
    public static object InSeries(object @event, int series)
    {
        int? marked = series > 1 ? series : null;
        return @event switch
        {
            V1.JobStarted e => e with { Series = marked },
            V1.JobAttemptFailed e => e with { Series = marked },
            V1.JobSucceeded e => e with { Series = marked },
            V1.JobFailed e => e with { Series = marked },
            V1.JobCancelled e => e with { Series = marked },
            V1.JobExpired e => e with { Series = marked },
            V1.JobShadowResult e => e with { Series = marked },
            _ => @event,
        };
    }

    /// <summary>
    /// The message id a job's queue message is published under: its submission's, or for a retry
    /// <c>&lt;job&gt;:retried:&lt;series&gt;</c>, so that two requests for the same retry queue it once.
    /// </summary>
    public static string QueueMessageId(JobCommand job) =>
        job.SeriesNumber > 1 ? $"{job.JobId}:retried:{Invariant(job.SeriesNumber)}" : SubmissionMessageId(job.JobId);

    /// <summary>Whether a terminal event says the job ran out of deliveries (dead-lettered).</summary>
    public static bool IsDeadLettered(object @event) => @event is V1.JobFailed { DeadLettered: true };

    /// <summary>The message id of a job's submission (the queue message) on the log.</summary>
    public static string SubmissionMessageId(Guid jobId) => jobId.ToString();

    /// <summary>
    /// The message id of the submission a processor records for a job it served on the interactive
    /// path: not the queued one's, so that a job whose interactive run was cut short can still be queued.
    /// </summary>
    public static string ServedSubmissionMessageId(Guid jobId) => $"{jobId}:served";

    /// <summary>
    /// The Nats-Msg-Id an event is published under. A job has one terminal id whatever ends it, so
    /// a cancel and a result racing for the same job leave one terminal event on the log; a start or
    /// a failed attempt has one id per attempt.
    /// </summary>
    /// <remarks>
    /// The ids of a later attempt series (<see cref="SeriesOf(object)"/> above 1) end in
    /// <c>:s&lt;series&gt;</c>, so its start and ending are not taken for the first series' duplicates;
    /// the first series' ids are unchanged, as recorded history has them.
    /// </remarks>
    public static string MessageId(object @event) => @event switch
    {
        V1.JobSubmitted e => SubmissionMessageId(e.JobId),
        V1.JobRetried e => $"{e.JobId}:retried:{Invariant(e.Series)}",
        V1.JobStarted e => $"{e.JobId}:started:{Invariant(e.Attempt)}{SeriesSuffix(@event, ":s")}",
        V1.JobAttemptFailed e => $"{e.JobId}:attempt_failed:{Invariant(e.Attempt)}{SeriesSuffix(@event, ":s")}",
        V1.JobShadowResult e => $"{e.JobId}:shadow:{e.ShadowVersion}{SeriesSuffix(@event, ":s")}",
        _ when IsTerminal(@event) => $"{EventNames.JobIdOf(@event)}:terminal{SeriesSuffix(@event, ":s")}",
        _ when EventNames.IsProcessorEvent(@event) => $"{EventNames.StreamIdOf(@event)}:{EventNames.Of(@event)}:{Invariant(ProcessorEventTime(@event).UtcTicks)}",
        _ => throw new ArgumentException($"Not a lifecycle event: {@event.GetType().Name}", nameof(@event)),
    };

    /// <summary>
    /// The job a message id (<see cref="MessageId"/>) ends, when it is a first series' terminal id.
    /// </summary>
    public static Guid? JobEndedBy(string messageId) => EndingOf(messageId) is { Series: 1 } ending ? ending.Job : null;

    /// <summary>
    /// The job and attempt series a terminal message id (<see cref="MessageId"/>) ends:
    /// <c>&lt;job&gt;:terminal</c> the first series, <c>&lt;job&gt;:terminal:s&lt;n&gt;</c> series n.
    /// </summary>
    public static (Guid Job, int Series)? EndingOf(string messageId)
    {
        var parts = messageId.Split(':');
        return parts switch
        {
            [var job, "terminal"] when Guid.TryParse(job, out var id) => (id, 1),
            [var job, "terminal", ['s', .. var n]] when Guid.TryParse(job, out var id) && ParseSeries(n) is { } series => (id, series),
            _ => null,
        };
    }

    /// <summary>
    /// The job and attempt series a queue message id (<see cref="QueueMessageId"/>) queues:
    /// <c>&lt;job&gt;</c> the first series, <c>&lt;job&gt;:retried:&lt;n&gt;</c> series n.
    /// </summary>
    public static (Guid Job, int Series)? QueuedBy(string messageId)
    {
        var parts = messageId.Split(':');
        return parts switch
        {
            [var job] when Guid.TryParse(job, out var id) => (id, 1),
            [var job, "retried", var n] when Guid.TryParse(job, out var id) && ParseSeries(n) is { } series => (id, series),
            _ => null,
        };
    }

    private static int? ParseSeries(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var series) && series > 1 ? series : null;

    private static string SeriesSuffix(object @event, string separator) =>
        SeriesOf(@event) is var series and > 1 ? $"{separator}{Invariant(series)}" : "";

    /// <summary>
    /// The id an event is recorded under: a name-based UUID of its stream, wire name and what
    /// tells it apart from its siblings (the attempt, or a processor event's time), and its attempt
    /// series when that is not the first.
    /// </summary>
    public static Guid EventId(object @event)
    {
        var discriminator = @event switch
        {
            V1.JobRetried e => Invariant(e.Series),
            V1.JobStarted e => Invariant(e.Attempt),
            V1.JobAttemptFailed e => Invariant(e.Attempt),
            V1.JobShadowResult e => e.ShadowVersion,
            _ when EventNames.IsProcessorEvent(@event) => Invariant(ProcessorEventTime(@event).UtcTicks),
            _ => "0",
        };
        return DeterministicGuid.Create(EventNames.StreamIdOf(@event), $"{EventNames.Of(@event)}\n{discriminator}{SeriesSuffix(@event, "\ns")}");
    }

    /// <summary>The recorded id of a job's submission: its stream exists exactly when this id is recorded.</summary>
    public static Guid SubmissionEventId(Guid jobId) => DeterministicGuid.Create(jobId, $"{EventNames.JobSubmitted}\n0");

    /// <summary>When a processor's capacity fact happened.</summary>
    public static DateTimeOffset ProcessorEventTime(object @event) => @event switch
    {
        V1.ProcessorOnline e => e.At,
        V1.ProcessorHeartbeat e => e.At,
        V1.ProcessorOffline e => e.At,
        _ => throw new ArgumentException($"Not a processor event: {@event.GetType().Name}", nameof(@event)),
    };

    private static string Invariant(long value) => value.ToString(CultureInfo.InvariantCulture);
}
