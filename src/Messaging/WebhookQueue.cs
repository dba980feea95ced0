using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Webhooks;
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
public sealed class WebhookQueue(INatsJSContext js)
{
    public const string Stream = "CQRSI_WEBHOOKS";
    public const string Consumer = "webhooks";

    public static string Subject(Guid jobId) => $"webhooks.{jobId:N}";

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
