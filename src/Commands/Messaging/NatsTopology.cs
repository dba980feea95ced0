using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Commands.Messaging;

/// <summary>
/// The JetStream layout. The API publishes each job once, to <c>jobs.&lt;region&gt;.&lt;model&gt;</c>,
/// which the EVENTS stream (limits retention: the ordered log the recorder reads) captures. The JOBS
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

    public static string JobSubject(string region, string model) => $"jobs.{region}.{model}";

    public static string EventSubject(string region, string model) => $"events.{region}.{model}";

    public static string ProcessorConsumer(string model) => $"proc_{model}";

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
                Sources = [new StreamSource { Name = EventsStream, FilterSubject = "jobs.>" }],
                Description = "Work queue of jobs per region and model, sourced from the event log.",
            },
            ct);

        await JobClaims.EnsureBucketAsync(js, ct);
        await ClaimCheck.EnsureBucketAsync(js, ct);
        foreach (var model in models)
        {
            await EnsureProcessorConsumerAsync(model, ct);
        }
    }

    /// <summary>Throws until the streams an API process creates exist (for roles that may not create them).</summary>
    public async Task WaitForStreamsAsync(CancellationToken ct)
    {
        await js.GetStreamAsync(EventsStream, cancellationToken: ct);
        await js.GetStreamAsync(JobsStream, cancellationToken: ct);
    }

    public Task<INatsJSConsumer> EnsureProcessorConsumerAsync(string model, CancellationToken ct) =>
        js.CreateOrUpdateConsumerAsync(
            JobsStream,
            new ConsumerConfig(ProcessorConsumer(model))
            {
                FilterSubject = $"jobs.*.{model}",
                AckPolicy = ConsumerConfigAckPolicy.Explicit,
                AckWait = options.JobAckWait,
                MaxDeliver = options.MaxDeliver,
                MaxAckPending = 100_000,
                MaxWaiting = 512,
                Description = $"Processors of model {model} share this durable: each job goes to one of them.",
            },
            ct).AsTask();
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
}
