using System.Diagnostics;
using System.Text;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace CqrsInference.Messaging;

/// <summary>
/// How every event travels on NATS, in one place: the JSON body, the wire name in the
/// <c>Cqrsi-Event-Type</c> header, the trace context, a message id for deduplication, and a wait
/// for JetStream's acknowledgement before anything may rely on the event. Job, processor and edge
/// events all go through <see cref="PublishAsync"/>.
/// </summary>
public static class EventWire
{
    /// <summary>
    /// Publishes an event body to a stream and waits until it is stored (a duplicate message id
    /// counts as stored: the idempotent success every retry relies on). Returns the bytes put on
    /// the wire (subject, headers and body) and the sequence the stream stored it at.
    /// </summary>
    public static async Task<(long Bytes, ulong Sequence)> PublishAsync(
        INatsJSContext js, string subject, NatsHeaders headers, byte[] payload, string msgId, int retryAttempts, CancellationToken ct)
    {
        var ack = await js.PublishAsync(
            subject,
            payload,
            headers: headers,
            opts: new NatsJSPubOpts { MsgId = msgId, RetryAttempts = retryAttempts, RetryWaitBetweenAttempts = TimeSpan.FromMilliseconds(500) },
            cancellationToken: ct);
        ack.EnsureStored();
        var bytes = Encoding.UTF8.GetByteCount(subject) + payload.Length
            + headers.Sum(h => Encoding.UTF8.GetByteCount($"{h.Key}: {h.Value}\r\n")) + Encoding.UTF8.GetByteCount($"Nats-Msg-Id: {msgId}\r\n");
        return (bytes, ack.Seq);
    }

    /// <summary>The headers an event travels with: its wire name and, when there is one, the trace.</summary>
    public static NatsHeaders Headers(string type, Activity? trace)
    {
        var headers = new NatsHeaders { [NatsTopology.EventTypeHeader] = type };
        TraceHeaders.Inject(trace, headers);
        return headers;
    }

    /// <summary>The event's wire name from its headers, or null.</summary>
    public static string? TypeOf(NatsHeaders? headers) => headers?[NatsTopology.EventTypeHeader].ToString() is { Length: > 0 } type ? type : null;

    /// <summary>The job or processor event a message carries, or null when it carries none this version knows.</summary>
    public static object? Decode(NatsHeaders? headers, byte[]? data) =>
        TypeOf(headers) is { } type && EventNames.Types.TryGetValue(type, out var clr) && data is not null
            ? JsonSerializer.Deserialize(data, clr, Commands.WireJson.Default)
            : null;
}
