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

    /// <summary>Creates or updates the streams; safe to run on every start (the API's role).</summary>
    public async Task EnsureAsync(CancellationToken ct)
    {
        await LegacyLayout.RetireAsync(js, ct);
        await js.CreateOrUpdateStreamAsync(
            new StreamConfig(EventsStream, [LogSubjects.All])
            {
                Retention = StreamConfigRetention.Limits,
                Storage = StreamConfigStorage.File,
                MaxAge = options.EventsMaxAge,
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
                DuplicateWindow = options.DuplicateWindow,
                NumReplicas = options.Replicas,
                Sources = [new StreamSource { Name = EventsStream, FilterSubject = LogSubjects.AllJobs }],
                Description = "Work queue of jobs per region, model, priority and tenant, sourced from the event log.",
            },
            ct);

        await JobClaims.EnsureBucketAsync(js, ct, options.Replicas);
        await ClaimCheck.EnsureBucketAsync(js, claimCheck ?? new ClaimCheckOptions(), options.Replicas, ct);
        await QuotaCounters.EnsureBucketAsync(js, ct, options.Replicas);
        await IdempotencyClaims.EnsureBucketAsync(js, ct, options.Replicas);
        await WebhookQueue.EnsureAsync(js, options.EventsMaxAge, options.Replicas, ct);
    }

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
