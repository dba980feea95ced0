using System.Diagnostics;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace CqrsInference.Commands.Messaging;

/// <summary>
/// How events travel on NATS, in one place: JSON body (source-generated), the wire name in the
/// <c>Cqrsi-Event-Type</c> header, the trace context, a message id for deduplication, and a wait
/// for JetStream's acknowledgement before anything else may rely on the event.
/// </summary>
public static class EventWire
{
    /// <summary>
    /// Publishes an event to the event log and waits until it is stored (a duplicate message id
    /// counts as stored). With <paramref name="announce"/>, a job event is then also announced on
    /// core NATS (<c>cqrsi.job.&lt;id&gt;</c>) for synchronous submits and SSE streams; that copy
    /// is fire and forget, the stored one is the record.
    /// </summary>
    public static async Task PublishAsync(
        INatsJSContext js, string subject, object @event, string msgId, bool announce, Activity? trace, CancellationToken ct)
    {
        var type = EventNames.Of(@event);
        var headers = new NatsHeaders { [NatsTopology.EventTypeHeader] = type };
        Telemetry.Inject(trace, headers);
        var payload = JsonSerializer.SerializeToUtf8Bytes(@event, EventNames.Types[type], WireJson.Default);
        var ack = await js.PublishAsync(
            subject,
            payload,
            headers: headers,
            opts: new NatsJSPubOpts { MsgId = msgId, RetryAttempts = 20, RetryWaitBetweenAttempts = TimeSpan.FromMilliseconds(500) },
            cancellationToken: ct);
        ack.EnsureStored();
        if (announce)
        {
            await js.Connection.PublishAsync(NatsTopology.JobNotifySubject(EventNames.JobIdOf(@event)), payload, headers: headers, cancellationToken: ct);
        }
    }

    /// <summary>The event's wire name from its headers, or null.</summary>
    public static string? TypeOf(NatsHeaders? headers) => headers?[NatsTopology.EventTypeHeader].ToString() is { Length: > 0 } type ? type : null;

    /// <summary>The event a message carries, or null when it carries none this version knows.</summary>
    public static object? Decode(NatsHeaders? headers, byte[]? data) =>
        TypeOf(headers) is { } type && EventNames.Types.TryGetValue(type, out var clr) && data is not null
            ? JsonSerializer.Deserialize(data, clr, WireJson.Default)
            : null;
}
