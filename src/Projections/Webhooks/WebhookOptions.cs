using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CqrsInference.Commands.Jobs.Webhooks;

namespace CqrsInference.Projections.Webhooks;

public sealed class WebhookOptions
{
    /// <summary>What a Standard Webhooks secret starts with.</summary>
    public const string SecretPrefix = "whsec_";

    private WebhookAddressRules? _addresses;

    /// <summary>Master key; each tenant signs with HMAC-SHA256(master, "tenant:" + tenant). Empty: webhooks are off.</summary>
    public string SigningKey { get; set; } = "";

    /// <summary>Delivery attempts per job before giving up.</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 8;

    /// <summary>How long a delivery waits for the job's ending to be recorded (PostgreSQL away, say) before it gives up.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "30.00:00:00")]
    public TimeSpan MaxWaitForRecording { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long one call may take, connecting included, before it counts as a failed attempt.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Calls in flight at once for one tenant: its endpoints that hang hold no more than this.</summary>
    [Range(1, 10_000)]
    public int MaxConcurrentPerTenant { get; set; } = 4;

    /// <summary>Calls in flight at once in this process, all tenants together.</summary>
    [Range(1, 100_000)]
    public int MaxConcurrent { get; set; } = 64;

    /// <summary>
    /// Deliveries taken from the queue and not yet settled (in flight, waiting for their tenant's
    /// turn, or backing off before a retry): the consumer's MaxAckPending.
    /// </summary>
    [Range(1, 1_000_000)]
    public int MaxPending { get; set; } = 10_000;

    /// <summary>
    /// Hosts (<c>host</c> or <c>host:port</c>) that webhooks may call over http and whatever their
    /// address: for local development and tests only. Empty: public https endpoints only.
    /// </summary>
    public List<string> AllowedInsecureHosts { get; set; } = [];

    public bool Enabled => SigningKey.Length > 0;

    /// <summary>Where webhooks may point (read once the options are bound).</summary>
    public WebhookAddressRules AddressRules() => _addresses ??= new WebhookAddressRules(AllowedInsecureHosts);

    /// <summary>
    /// The Standard Webhooks secret a tenant verifies <c>webhook-signature</c> with: <c>whsec_</c> and
    /// the base64 of its key (HMAC-SHA256(master, "tenant:" + tenant)), the form the Standard Webhooks
    /// libraries take.
    /// </summary>
    public string TenantSecret(string tenant) => SecretPrefix + Convert.ToBase64String(TenantKeyBytes(tenant));

    /// <summary>The same key in hex, for the deprecated <c>Cqrsi-Signature</c>.</summary>
    public string TenantKey(string tenant) => Convert.ToHexStringLower(TenantKeyBytes(tenant));

    /// <summary>
    /// <c>webhook-signature</c>: <c>v1,</c> and the base64 of HMAC-SHA256(tenant key, "id.timestamp.body")
    /// (Standard Webhooks, symmetric).
    /// </summary>
    public string Signature(string tenant, string messageId, long unixSeconds, string body) =>
        "v1," + Convert.ToBase64String(HMACSHA256.HashData(
            TenantKeyBytes(tenant), Encoding.UTF8.GetBytes($"{messageId}.{unixSeconds.ToString(CultureInfo.InvariantCulture)}.{body}")));

    /// <summary>
    /// The deprecated <c>Cqrsi-Signature</c> header, sent beside the Standard Webhooks headers for one
    /// release: <c>t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256(hex tenant key, "t.body")&gt;</c>.
    /// </summary>
    public string LegacySignature(string tenant, long unixSeconds, string body) =>
        $"t={unixSeconds},v1=" + Convert.ToHexStringLower(HMACSHA256.HashData(
            Encoding.UTF8.GetBytes(TenantKey(tenant)), Encoding.UTF8.GetBytes($"{unixSeconds.ToString(CultureInfo.InvariantCulture)}.{body}")));

    private byte[] TenantKeyBytes(string tenant) =>
        HMACSHA256.HashData(Encoding.UTF8.GetBytes(SigningKey), Encoding.UTF8.GetBytes("tenant:" + tenant));
}
