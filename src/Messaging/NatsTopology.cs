using System.ComponentModel.DataAnnotations;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

/// <summary>
/// The JetStream layout. The event log <c>CQRSI_EVENTS</c> (limits retention: the ordered record of
/// everything that happens to jobs) holds every submission and lifecycle event under
/// <c>log.&lt;partition&gt;.…</c> (<see cref="LogSubjects"/>); the work queue <c>CQRSI_JOBS</c> sources
/// the submissions from it, and processors pull from the work queue. One publish therefore feeds both
/// the queue and the log, and a job's submission always precedes its lifecycle events in the log and
/// in its partition. See docs/ARCHITECTURE.md.
/// </summary>
public sealed class NatsTopology(INatsJSContext js, TopologyOptions options, ClaimCheckOptions? claimCheck = null)
{
    public const string EventsStream = "CQRSI_EVENTS";
    public const string JobsStream = "CQRSI_JOBS";
    public const string EventTypeHeader = "Cqrsi-Event-Type";

    /// <summary>The durable consumer the recorder of a partition reads the log with.</summary>
    public static string RecorderConsumer(int partition) => $"recorder_{partition}";

    public TopologyOptions Options => options;

    /// <summary>
    /// Creates the streams, or brings existing ones to the configured limits (every limit here may
    /// change on a live stream); safe to run on every start (the API's role). A limit JetStream
    /// cannot reserve (a MaxBytes beyond the server's <c>max_file_store</c>) stops the start naming
    /// the setting.
    /// </summary>
    public async Task EnsureAsync(CancellationToken ct)
    {
        await LegacyLayout.RetireAsync(js, ct);
        await StreamLimits.ReservingAsync("Topology:EventsMaxBytes / Topology:JobsMaxBytes", () => EnsureLogAndQueueAsync(ct));
        await JobClaims.EnsureBucketAsync(js, ct, options.Replicas);
        await ClaimCheck.EnsureBucketAsync(js, claimCheck ?? new ClaimCheckOptions(), options.Replicas, ct);
        await QuotaCounters.EnsureBucketAsync(js, ct, options.Replicas);
        await IdempotencyClaims.EnsureBucketAsync(js, ct, options.Replicas);
        await WebhookQueue.EnsureAsync(js, options.EventsMaxAge, StreamLimits.Count(options.WebhooksMaxMsgs), options.Replicas, ct);
    }

    /// <summary>
    /// The event log and the work queue. Both discard new messages at their limits, never old ones:
    /// the log must not lose an event no recorder has recorded (it still ages out by
    /// <see cref="TopologyOptions.EventsMaxAge"/>), and the queue must not lose an accepted job. A
    /// full log refuses publishes (a submit answers 503); a full queue stops taking jobs from the
    /// log (JetStream's sourcing waits and resumes where it stopped), and the API refuses new
    /// submits while it is full (<see cref="JobQueues.StoredAsync"/>).
    /// </summary>
    private async Task EnsureLogAndQueueAsync(CancellationToken ct)
    {
        await js.CreateOrUpdateStreamAsync(
            new StreamConfig(EventsStream, [LogSubjects.All])
            {
                Retention = StreamConfigRetention.Limits,
                Storage = StreamConfigStorage.File,
                MaxAge = options.EventsMaxAge,
                MaxBytes = StreamLimits.Bytes(options.EventsMaxBytes),
                Discard = StreamConfigDiscard.New,
                DuplicateWindow = options.DuplicateWindow,
                NumReplicas = options.Replicas,
                Description = $"Job submissions and lifecycle events, in order, in {options.Partitions} partitions: the recorders' source.",
            },
            ct);

        await js.CreateOrUpdateStreamAsync(
            new StreamConfig
            {
                Name = JobsStream,
                Retention = StreamConfigRetention.Workqueue,
                Storage = StreamConfigStorage.File,
                MaxMsgs = StreamLimits.Count(options.JobsMaxMsgs),
                MaxBytes = StreamLimits.Bytes(options.JobsMaxBytes),
                Discard = StreamConfigDiscard.New,
                DuplicateWindow = options.DuplicateWindow,
                NumReplicas = options.Replicas,
                Sources = [new StreamSource { Name = EventsStream, FilterSubject = LogSubjects.AllJobs }],
                Description = "Work queue of jobs per region, model, priority and tenant, sourced from the event log.",
            },
            ct);
    }

    /// <summary>
    /// A JetStream round trip (the event log's info), for a reader that is about to say it works
    /// again: an ordered consumer is made on the server only once consuming starts, so without it a
    /// server that hangs (connections open, nothing answered) was taken for one that works every
    /// ~16 s, and the role's outage metric flapped.
    /// </summary>
    public static async Task ConfirmedAsync(INatsJSContext js, CancellationToken ct) =>
        await js.GetStreamAsync(EventsStream, cancellationToken: ct);

    /// <summary>Throws until the streams an API process creates exist (for roles that may not create them).</summary>
    public async Task WaitForStreamsAsync(CancellationToken ct)
    {
        await js.GetStreamAsync(EventsStream, cancellationToken: ct);
        await js.GetStreamAsync(JobsStream, cancellationToken: ct);
    }

    /// <summary>
    /// Checks that the server maps the log into the partitions this deployment records
    /// (<see cref="TopologyOptions.Partitions"/>): without the mapping nothing could be published,
    /// and a partition the recorders do not know would never be recorded.
    /// </summary>
    public Task VerifyPartitionsAsync(CancellationToken ct) => PartitionProbe.VerifyAsync(js.Connection, options.Partitions, ct);
}

/// <summary>JetStream settings shared by every role.</summary>
public sealed class TopologyOptions
{
    /// <summary>How long a delivered job may go without an ack or a progress heartbeat before redelivery.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "1.00:00:00")]
    public TimeSpan JobAckWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Deliveries of one job before it is dead-lettered as failed.</summary>
    [Range(1, 1000)]
    public int MaxDeliver { get; set; } = 5;

    /// <summary>Window in which JetStream drops a message whose Nats-Msg-Id it has already stored.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "30.00:00:00")]
    public TimeSpan DuplicateWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long the event log keeps messages: the buffer while PostgreSQL is down.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan EventsMaxAge { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How long a queue's consumer may hold nothing before it is deleted (<see cref="QueueHousekeeping"/>).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "3650.00:00:00")]
    public TimeSpan QueueIdleAfter { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Jobs the work queue (<c>CQRSI_JOBS</c>) holds at most, every model together; 0 = no limit. At
    /// the limit new submits are refused (503 with Retry-After) and nothing accepted is dropped.
    /// </summary>
    [Range(0L, long.MaxValue)]
    public long JobsMaxMsgs { get; set; } = 1_000_000;

    /// <summary>
    /// Bytes the work queue holds at most; -1 = bounded by the server's <c>max_file_store</c> only.
    /// JetStream reserves it up front from <c>max_file_store</c>.
    /// </summary>
    [Range(-1L, long.MaxValue)]
    public long JobsMaxBytes { get; set; } = -1;

    /// <summary>
    /// Bytes the event log holds at most; -1 = bounded by <see cref="EventsMaxAge"/> and the server's
    /// <c>max_file_store</c>. At the limit new events are refused (a submit answers 503; a processor
    /// retries its result), never old unrecorded ones dropped. Reserved up front like <see cref="JobsMaxBytes"/>.
    /// </summary>
    [Range(-1L, long.MaxValue)]
    public long EventsMaxBytes { get; set; } = -1;

    /// <summary>
    /// Webhook calls owed at most (<c>CQRSI_WEBHOOKS</c>); 0 = no limit. At the limit the recorder
    /// waits, retrying, until the dispatcher has made room: a call is never dropped to make room.
    /// </summary>
    [Range(0L, long.MaxValue)]
    public long WebhooksMaxMsgs { get; set; } = 1_000_000;

    /// <summary>Copies of each stream and bucket: 1 on a single server, 3 on a three-node cluster.</summary>
    [Range(1, 5)]
    public int Replicas { get; set; } = 1;

    /// <summary>
    /// Partitions of the event log, each recorded by its own recorder with its own checkpoint. The
    /// nats-server mapping (<see cref="LogSubjects.ServerMappings"/>) must name the same number.
    /// </summary>
    [Range(1, 1024)]
    public int Partitions { get; set; } = 2;
}

/// <summary>How the streams' limits are written to JetStream, and what a refused reservation says.</summary>
internal static class StreamLimits
{
    /// <summary>A message count: 0 (no limit) is JetStream's -1.</summary>
    public static long Count(long limit) => limit <= 0 ? -1 : limit;

    /// <summary>A size: -1 (no limit) stays -1.</summary>
    public static long Bytes(long limit) => limit <= 0 ? -1 : limit;

    /// <summary>Runs <paramref name="ensure"/>; a MaxBytes the server cannot reserve stops the start naming <paramref name="settings"/>.</summary>
    public static async Task ReservingAsync(string settings, Func<Task> ensure)
    {
        try
        {
            await ensure();
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode is 10023 or 10047)
        {
            throw new InvalidOperationException(
                $"A stream cannot reserve its {settings}: {e.Error.Description}. Lower the setting or raise the nats-server's jetstream max_file_store.", e);
        }
    }
}
