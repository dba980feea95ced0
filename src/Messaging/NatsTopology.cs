using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

/// <summary>
/// The JetStream layout. The API publishes each job once, to
/// <c>jobs.&lt;region&gt;.&lt;model&gt;.&lt;priority&gt;.&lt;tenant&gt;</c> (one <see cref="JobQueue"/>), which the EVENTS stream (limits retention: the ordered log the recorder reads) captures. The JOBS
/// work-queue stream sources <c>jobs.&gt;</c> from EVENTS, and processors pull from JOBS. One publish
/// therefore feeds both the queue and the event log, and a job's submission always precedes its
/// lifecycle events in the log. See docs/ARCHITECTURE.md.
/// </summary>
public sealed class NatsTopology(INatsJSContext js, TopologyOptions options)
{
    public const string EventsStream = "CQRSI_EVENTS";
    public const string JobsStream = "CQRSI_JOBS";
    public const string RecorderConsumer = "recorder";
    public const string EventTypeHeader = "Cqrsi-Event-Type";

    public static string EventSubject(string region, string model) => $"events.{region}.{model}";

    /// <summary>Where processors publish their capacity facts (online, heartbeat, offline).</summary>
    public const string ProcessorSubject = "events.processors";

    /// <summary>Core NATS subject on which each stored lifecycle event of a job is announced.</summary>
    public static string JobNotifySubject(Guid jobId) => $"cqrsi.job.{jobId:N}";

    public TopologyOptions Options => options;

    /// <summary>Creates or updates streams and consumers; safe to run on every start.</summary>
    public async Task EnsureAsync(IEnumerable<string> models, CancellationToken ct)
    {
        await js.CreateOrUpdateStreamAsync(
            new StreamConfig(EventsStream, ["jobs.>", "events.>"])
            {
                Retention = StreamConfigRetention.Limits,
                Storage = StreamConfigStorage.File,
                MaxAge = options.EventsMaxAge,
                DuplicateWindow = options.DuplicateWindow,
                NumReplicas = options.Replicas,
                Description = "Job submissions and lifecycle events, in order: the recorder's source.",
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
                Sources = [new StreamSource { Name = EventsStream, FilterSubject = "jobs.>" }],

                Description = "Work queue of jobs per region, model, priority and tenant, sourced from the event log.",
            },
            ct);

        await JobClaims.EnsureBucketAsync(js, ct, options.Replicas);
        await ClaimCheck.EnsureBucketAsync(js, ct, options.Replicas);

        // Before per-queue consumers, one consumer per model (proc_<model>, filter jobs.*.<model>)
        // served every region; nothing publishes to its subjects any more.
        foreach (var model in models)
        {
            try
            {
                await js.DeleteConsumerAsync(JobsStream, $"proc_{model}", ct);
            }
            catch (NatsJSApiException e) when (e.Error.Code == 404)
            {
            }
        }
    }

    /// <summary>Throws until the streams an API process creates exist (for roles that may not create them).</summary>
    public async Task WaitForStreamsAsync(CancellationToken ct)
    {
        await js.GetStreamAsync(EventsStream, cancellationToken: ct);
        await js.GetStreamAsync(JobsStream, cancellationToken: ct);
    }
}

/// <summary>JetStream settings shared by every role.</summary>
public sealed class TopologyOptions
{
    /// <summary>How long a delivered job may go without an ack or a progress heartbeat before redelivery.</summary>
    public TimeSpan JobAckWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Deliveries of one job before it is dead-lettered as failed.</summary>
    public int MaxDeliver { get; set; } = 5;

    /// <summary>Window in which JetStream drops a message whose Nats-Msg-Id it has already stored.</summary>
    public TimeSpan DuplicateWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long the event log keeps messages: the buffer while PostgreSQL is down.</summary>
    public TimeSpan EventsMaxAge { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Copies of each stream and bucket: 1 on a single server, 3 on a three-node cluster.</summary>
    public int Replicas { get; set; } = 1;
}
