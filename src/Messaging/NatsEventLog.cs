using System.Diagnostics;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using NATS.Client.JetStream;

namespace CqrsInference.Messaging;

/// <summary>
/// The event log on JetStream: a job's lifecycle events go to <c>events.&lt;region&gt;.&lt;model&gt;.&lt;job&gt;</c>
/// (the server maps them into the job's partition, <see cref="LogSubjects"/>), where the recorders and
/// the API's followers of a job read them; processors' capacity facts go to <c>events.processors.&lt;processor&gt;</c>.
/// Each event is put in the attempt series of its route (<see cref="JobLifecycle.InSeries"/>) and
/// published under its <see cref="JobLifecycle.MessageId"/>.
/// </summary>
public sealed class NatsEventLog(INatsJSContext js) : IEventLog
{
    /// <summary>Publishes are retried through a stream-leader election (4–9 s on nats-server 2.9).</summary>
    private const int RetryAttempts = 20;

    public async Task AppendAsync(JobRoute job, object @event, Activity? trace, CancellationToken ct)
    {
        Within(trace);
        @event = JobLifecycle.InSeries(@event, job.Series);
        var type = EventNames.Of(@event);
        var payload = JsonSerializer.SerializeToUtf8Bytes(@event, EventNames.Types[type], WireJson.Default);
        var headers = EventWire.Headers(type, trace);
        await EventWire.PublishAsync(js, LogSubjects.JobEvent(job.Region, job.Model, EventNames.JobIdOf(@event)), headers, payload, JobLifecycle.MessageId(@event), RetryAttempts, ct);
    }

    public async Task AppendServedAsync(JobCommand job, byte[] message, Activity? trace, CancellationToken ct)
    {
        Within(trace);
        var headers = new NATS.Client.Core.NatsHeaders();
        TraceHeaders.Inject(trace, headers);
        await EventWire.PublishAsync(js, LogSubjects.Served(JobQueue.Of(job), job.JobId), headers, message, JobLifecycle.ServedSubmissionMessageId(job.JobId), RetryAttempts, ct);
    }

    /// <summary>
    /// Where anything listens to NATS.Net's spans (an OTLP collector), its publish span becomes the
    /// message's trace context: it must be the job's own span's child, not that of whichever span is
    /// current (a batch holds several jobs' spans at once). Set in this async method only, it is
    /// undone for the caller when the method returns.
    /// </summary>
    private static void Within(Activity? trace) => Activity.Current = trace;

    /// <summary>Publishes a processor's capacity fact (online, heartbeat, offline).</summary>
    public async Task AppendProcessorEventAsync(object @event, CancellationToken ct)
    {
        Within(null);
        var type = EventNames.Of(@event);
        var payload = JsonSerializer.SerializeToUtf8Bytes(@event, EventNames.Types[type], WireJson.Default);
        await EventWire.PublishAsync(js, LogSubjects.ProcessorEvent(EventNames.StreamIdOf(@event)), EventWire.Headers(type, trace: null), payload, JobLifecycle.MessageId(@event), RetryAttempts, ct);
    }
}
