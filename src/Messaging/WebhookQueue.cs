using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

/// <summary>
/// The deliveries webhooks owe: a work queue with one message per ended job that has a webhook,
/// put there by the job's recorder before the ending is committed (message id <c>&lt;job&gt;:webhook</c>,
/// so a run recorded again puts it there once) and taken by the dispatcher, which calls the webhook
/// once the job's recorded state says it ended.
/// </summary>
public sealed class WebhookQueue(INatsJSContext js)
{
    public const string Stream = "CQRSI_WEBHOOKS";
    public const string Consumer = "webhooks";

    public static string Subject(Guid jobId) => $"webhooks.{jobId:N}";

    public static async Task EnsureAsync(INatsJSContext js, TimeSpan maxAge, int replicas, CancellationToken ct) =>
        await js.CreateOrUpdateStreamAsync(
            new StreamConfig(Stream, ["webhooks.>"])
            {
                Retention = StreamConfigRetention.Workqueue,
                Storage = StreamConfigStorage.File,
                MaxAge = maxAge,
                NumReplicas = replicas,
                Description = "Webhook deliveries owed: one per ended job with a webhook, until it is delivered or given up.",
            },
            ct);

    /// <summary>Owes the webhook of each ended job (idempotent: one message per job).</summary>
    public Task OweAsync(IEnumerable<WebhookOwed> endings, CancellationToken ct) =>
        Task.WhenAll(endings.Select(async e =>
        {
            var payload = JsonSerializer.SerializeToUtf8Bytes(e, WireJson.Default.WebhookOwed);
            var ack = await js.PublishAsync(Subject(e.JobId), payload, opts: new NatsJSPubOpts { MsgId = $"{e.JobId}:webhook" }, cancellationToken: ct);
            ack.EnsureStored();
        }));
}
