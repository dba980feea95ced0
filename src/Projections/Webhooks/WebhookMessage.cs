using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CqrsInference.Commands.Jobs.Webhooks;

namespace CqrsInference.Projections.Webhooks;

/// <summary>
/// One webhook call as it goes on the wire. The body is the job as recorded when the call is made,
/// with the call's <c>type</c> (<c>job.started</c> or <c>job.completed</c>, <see cref="WebhookEvents"/>)
/// and <c>timestamp</c>; or, for a batch that ended, the batch's view (<see cref="Of(Batches.BatchView, string)"/>). It is signed the Standard Webhooks way, which libraries in most languages
/// verify: <c>webhook-id</c> (the same on every retry of the call, for deduplication),
/// <c>webhook-timestamp</c> (unix seconds) and <c>webhook-signature</c> (<see cref="WebhookOptions.Signature"/>).
/// The deprecated <c>Cqrsi-Signature</c> is sent as well, for one release, so that receivers can move over.
/// </summary>
internal static class WebhookMessage
{
    public const string IdHeader = "webhook-id";
    public const string TimestampHeader = "webhook-timestamp";
    public const string SignatureHeader = "webhook-signature";

    /// <summary>Deprecated: replaced by <see cref="SignatureHeader"/>; sent this release only.</summary>
    public const string LegacySignatureHeader = "Cqrsi-Signature";

    /// <summary><c>&lt;job&gt;:&lt;attempt&gt;</c>: which try of the call this is.</summary>
    public const string DeliveryHeader = "Cqrsi-Delivery";

    /// <summary>The kind of a batch's one call.</summary>
    public const string BatchEnded = "ended";

    /// <summary>The call's <c>webhook-id</c>: one per job and kind of call, kept across retries.</summary>
    public static string IdOf(Guid jobId, string kind) => $"{jobId}:{kind}";

    /// <summary>The body: the job as recorded, what the call is about (<c>type</c>, and the event) and when it was made.</summary>
    public static string Body(JobStatus.JobStatus job, string kind, string eventType, DateTimeOffset now) =>
        JsonSerializer.Serialize(
            new
            {
                type = WebhookEvents.TypeOf(kind),
                timestamp = now,
                id = job.Id,
                status = job.Status,
                model = job.Model,
                region = job.Region,
                startedAt = job.StartedAt,
                completedAt = job.CompletedAt,
                attempts = job.Attempts,
                outputs = job.Outputs,
                outputsRef = job.OutputsRef,
                error = job.Error,
                @event = eventType,
            },
            JsonSerializerOptions.Web);

    /// <summary>The job's call, as recorded: its kind (started or completed) and body.</summary>
    public static WebhookSubject Of(JobStatus.JobStatus job, string eventType)
    {
        var kind = WebhookEvents.KindOf(eventType);
        return new WebhookSubject(job.Id, job.Tenant, job.Webhook, kind, now => Body(job, kind, eventType, now));
    }

    /// <summary>
    /// A batch's call when it ends: the batch as <c>GET /v1/batches/{id}</c> returns it, with the call's
    /// <c>type</c> (<c>batch.completed</c>, <c>batch.cancelled</c> or <c>batch.expired</c>) and <c>timestamp</c>.
    /// One per batch: its <c>webhook-id</c> is <c>&lt;batch&gt;:ended</c>.
    /// </summary>
    public static WebhookSubject Of(Batches.BatchView batch, string tenant) =>
        new(batch.Id, tenant, batch.Webhook, BatchEnded, now =>
        {
            var body = new JsonObject { ["type"] = $"batch.{batch.Status}", ["timestamp"] = now };
            foreach (var (name, value) in JsonSerializer.SerializeToNode(batch, JsonSerializerOptions.Web)!.AsObject().ToList())
            {
                body[name] = value?.DeepClone();
            }

            return body.ToJsonString(JsonSerializerOptions.Web);
        });

    /// <summary>The signed POST of one call.</summary>
    public static HttpRequestMessage Request(string url, WebhookSubject subject, int attempt, DateTimeOffset now, WebhookOptions options)
    {
        var body = subject.Body(now);
        var id = IdOf(subject.Id, subject.Kind);
        var unixSeconds = now.ToUnixTimeSeconds();
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add(IdHeader, id);
        request.Headers.Add(TimestampHeader, unixSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add(SignatureHeader, options.Signature(subject.Tenant, id, unixSeconds, body));
        request.Headers.Add(LegacySignatureHeader, options.LegacySignature(subject.Tenant, unixSeconds, body));
        request.Headers.Add(DeliveryHeader, $"{subject.Id}:{attempt}");
        return request;
    }
}

/// <summary>
/// What one call is about, as recorded: the job or batch (<paramref name="Id"/>), its tenant (who signs),
/// its webhook, the kind of call (part of its <c>webhook-id</c>) and its body as of a time.
/// </summary>
internal sealed record WebhookSubject(Guid Id, string Tenant, string? Url, string Kind, Func<DateTimeOffset, string> Body);
