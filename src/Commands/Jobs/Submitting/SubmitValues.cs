using System.ComponentModel.DataAnnotations;
using System.Text;
using System.Text.Json;
using CqrsInference.Commands.Jobs.Webhooks;

namespace CqrsInference.Commands.Jobs.Submitting;

public sealed class SubmitOptions
{
    /// <summary>Region of jobs that name none: the API instance's own region.</summary>
    public string Region { get; set; } = "local";

    /// <summary>
    /// The regions jobs may name (<c>Submit:Regions</c>); empty means only <see cref="Region"/>.
    /// A fixed set: every region × model × priority × tenant is a queue with its own consumer.
    /// </summary>
    public List<string> Regions { get; set; } = [];

    public IReadOnlyList<string> ServedRegions => Regions.Count > 0 ? Regions : [Region];

    /// <summary>
    /// How long a submit may take to make its jobs durable (<c>Submit:DurableWithin</c>): long
    /// enough to ride out a stream leader election (4–9 s on nats-server 2.9), short enough that a
    /// caller learns of an outage (503) instead of hanging.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan DurableWithin { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long an interactive job waits for a region's processors to answer before it tries the
    /// next region, then the queue (<c>Submit:InteractiveAnswerWithin</c>). A processor that cannot
    /// take the job answers at once; this bounds a processor that died or hangs, so a model whose
    /// runs take longer needs a longer setting (else the job runs again from the queue).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan InteractiveAnswerWithin { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Waiting jobs of a model above which its submits are refused (503) instead of growing the queue without bound.</summary>
    [Range(1L, long.MaxValue)]
    public long MaxQueueDepth { get; set; } = 100_000;

    /// <summary>Whether jobs may name a webhook (the deployment has a signing key).</summary>
    public bool WebhooksEnabled { get; set; }

    /// <summary>Where webhooks may point (<see cref="WebhookAddressRules"/>, from <c>Webhooks:AllowedInsecureHosts</c>).</summary>
    public WebhookAddressRules WebhookAddresses { get; set; } = WebhookAddressRules.PublicOnly;
}

public static class Priorities
{
    public const string Interactive = "interactive";
    public const string Batch = "batch";
    public static readonly IReadOnlyList<string> All = [Interactive, Batch];
}

public static class JobIds
{
    /// <summary>The id of a new job: derived from its Idempotency-Key, else time-ordered (UUIDv7).</summary>
    public static Guid For(string tenant, string? idempotencyKey, DateTimeOffset now) =>
        idempotencyKey is { } key ? DeterministicGuid.ForIdempotencyKey(tenant, key) : Guid.CreateVersion7(now);
}

public static class RequestDigest
{
    /// <summary>SHA-256 of the request body, to tell a retried submit from a different one.</summary>
    public static string Of(ReadOnlySpan<byte> body) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(body));

    public static string Of(string body) => Of(Encoding.UTF8.GetBytes(body));

    public static string Of(JsonElement body) => Of(JsonSerializer.SerializeToUtf8Bytes(body));
}
