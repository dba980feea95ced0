using System.Diagnostics;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using NATS.Client.JetStream;

namespace CqrsInference.Messaging;

/// <summary>
/// The event log on JetStream: a job's lifecycle events go to <c>events.&lt;region&gt;.&lt;model&gt;</c>
/// and, once stored, are announced on <c>cqrsi.job.&lt;id&gt;</c> for synchronous submits and SSE
/// (fire and forget: the stored copy is the record); processors' capacity facts go to
/// <c>events.processors</c>. Each event's message id comes from <see cref="JobLifecycle.MessageId"/>.
/// </summary>
public sealed class NatsEventLog(INatsJSContext js) : IEventLog
{
    /// <summary>Publishes are retried through a stream-leader election (4–9 s on nats-server 2.9).</summary>
    private const int RetryAttempts = 20;

    public async Task AppendAsync(JobRoute job, object @event, Activity? trace, CancellationToken ct)
    {
        var type = EventNames.Of(@event);
        var payload = JsonSerializer.SerializeToUtf8Bytes(@event, EventNames.Types[type], WireJson.Default);
        await EventWire.PublishAsync(js, NatsTopology.EventSubject(job.Region, job.Model), type, payload, JobLifecycle.MessageId(@event), trace, RetryAttempts, ct);
        await js.Connection.PublishAsync(NatsTopology.JobNotifySubject(EventNames.JobIdOf(@event)), payload, headers: EventWire.Headers(type, trace), cancellationToken: ct);
    }

    /// <summary>Publishes a processor's capacity fact (online, heartbeat, offline).</summary>
    public async Task AppendProcessorEventAsync(object @event, CancellationToken ct)
    {
        var type = EventNames.Of(@event);
        var payload = JsonSerializer.SerializeToUtf8Bytes(@event, EventNames.Types[type], WireJson.Default);
        await EventWire.PublishAsync(js, NatsTopology.ProcessorSubject, type, payload, JobLifecycle.MessageId(@event), trace: null, RetryAttempts, ct);
    }
}
