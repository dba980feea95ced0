using System.Globalization;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Webhooks;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

/// <summary>
/// The deliveries webhooks owe: a work queue with one message per ended job that has a webhook
/// (and one per job that began running, for jobs whose <c>webhookEvents</c> name <c>started</c>),
/// put there by the job's recorder before the event is committed (message id <c>&lt;job&gt;:webhook</c>
/// for the ending, <c>&lt;job&gt;:webhook:started</c> for the start, so a run recorded again puts it
/// there once) and taken by the dispatcher, which calls the webhook once the job's recorded state
/// shows what the call is about. A batch's ending owes one too, under the batch's id and the ending's
/// event name (message id <c>&lt;batch&gt;:webhook</c>).
/// </summary>
/// <remarks>
/// Only calls made to the receiver count as attempts, never the server's deliveries (a wait for
/// PostgreSQL or for the recording is redelivered as often as it takes): a call that failed owes
/// the delivery again (<see cref="RetryLaterAsync"/>) with the calls made so far
/// (<see cref="CallsHeader"/>) and when the next is due (<see cref="DueHeader"/>), and the message
/// it came in is acknowledged.
/// </remarks>
public sealed class WebhookQueue(INatsJSContext js)
{
    public const string Stream = "CQRSI_WEBHOOKS";
    public const string Consumer = "webhooks";

    /// <summary>The calls already made to the receiver for this delivery; absent: none.</summary>
    public const string CallsHeader = "Cqrsi-Calls";

    /// <summary>When the next call is due (unix milliseconds), after a failed one; absent: now.</summary>
    public const string DueHeader = "Cqrsi-Due";

    public static string Subject(Guid jobId) => $"webhooks.{jobId:N}";

    /// <summary>The calls made to the receiver before this delivery (<see cref="CallsHeader"/>).</summary>
    public static int CallsMade<T>(INatsJSMsg<T> msg) =>
        int.TryParse(Header(msg, CallsHeader), NumberStyles.None, CultureInfo.InvariantCulture, out var calls) ? calls : 0;

    /// <summary>When this delivery's call is due (<see cref="DueHeader"/>); null: now.</summary>
    public static DateTimeOffset? DueAt<T>(INatsJSMsg<T> msg) =>
        long.TryParse(Header(msg, DueHeader), NumberStyles.None, CultureInfo.InvariantCulture, out var ms) ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

    /// <summary>
    /// After a failed call: owes the delivery again, with the calls made so far and when the next is
    /// due, then acknowledges <paramref name="msg"/>. Its message id (<c>&lt;owed id&gt;:c&lt;calls&gt;</c>)
    /// makes a retry of this step (the ack lost, the message redelivered) owe it once.
    /// </summary>
    public async Task RetryLaterAsync(INatsJSMsg<byte[]> msg, WebhookOwed owed, int callsMade, DateTimeOffset due, CancellationToken ct)
    {
        var calls = callsMade.ToString(CultureInfo.InvariantCulture);
        var headers = new NatsHeaders
        {
            [CallsHeader] = calls,
            [DueHeader] = due.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture),
        };
        var payload = JsonSerializer.SerializeToUtf8Bytes(owed, WireJson.Default.WebhookOwed);
        var ack = await js.PublishAsync(Subject(owed.JobId), payload, headers: headers, opts: new NatsJSPubOpts { MsgId = $"{MessageId(owed)}:c{calls}" }, cancellationToken: ct);
        ack.EnsureStored();
        await msg.AckAsync(cancellationToken: ct);
    }

    private static string? Header<T>(INatsJSMsg<T> msg, string name) =>
        msg.Headers is { } headers && headers.TryGetValue(name, out var value) ? value.ToString() : null;

    /// <summary>
    /// Creates the queue or brings it to its limits. It discards new messages at its limit, never
    /// old ones: an owed call is not dropped to make room; the recorder that owes one more retries.
    /// </summary>
    public static async Task EnsureAsync(INatsJSContext js, TimeSpan maxAge, long maxMsgs, int replicas, CancellationToken ct) =>
        await js.CreateOrUpdateStreamAsync(
            new StreamConfig(Stream, ["webhooks.>"])
            {
                Retention = StreamConfigRetention.Workqueue,
                Storage = StreamConfigStorage.File,
                MaxAge = maxAge,
                MaxMsgs = maxMsgs,
                Discard = StreamConfigDiscard.New,
                NumReplicas = replicas,
                Description = "Webhook deliveries owed: one per ended job with a webhook, until it is delivered or given up.",
            },
            ct);

    /// <summary>The message id of a delivery owed: one per job and kind of call.</summary>
    /// <remarks>A retried job's later attempt series owe their own calls: <c>:s&lt;series&gt;</c> is appended.</remarks>
    public static string MessageId(WebhookOwed owed) =>
        (WebhookEvents.KindOf(owed.EventType) == WebhookEvents.Started ? $"{owed.JobId}:webhook:started" : $"{owed.JobId}:webhook")
        + (owed.Series is > 1 ? $":s{owed.Series.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : "");

    /// <summary>Owes each call (idempotent: one message per job and kind of call).</summary>
    public Task OweAsync(IEnumerable<WebhookOwed> endings, CancellationToken ct) =>
        Task.WhenAll(endings.Select(async e =>
        {
            var payload = JsonSerializer.SerializeToUtf8Bytes(e, WireJson.Default.WebhookOwed);
            var ack = await js.PublishAsync(Subject(e.JobId), payload, opts: new NatsJSPubOpts { MsgId = MessageId(e) }, cancellationToken: ct);
            ack.EnsureStored();
        }));
}
