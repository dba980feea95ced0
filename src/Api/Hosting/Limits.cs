using System.ComponentModel.DataAnnotations;
using System.Threading.RateLimiting;

namespace CqrsInference.Api.Hosting;

/// <summary>Per-tenant submit rate, from <c>Api:RateLimit</c> (a default and per-tenant overrides).</summary>
internal sealed class RateLimitOptions
{
    /// <summary>Jobs per second a tenant may submit, on average.</summary>
    [Range(0.001, double.MaxValue)]
    public double PermitsPerSecond { get; set; } = 2000;

    /// <summary>Jobs a tenant may submit at once (the bucket's size).</summary>
    [Range(1, int.MaxValue)]
    public int Burst { get; set; } = 4000;

    public Dictionary<string, RateLimitOptions> Tenants { get; set; } = [];
}

/// <summary>
/// A token bucket per tenant on submitted jobs (not requests: a bulk submit of 100 jobs takes 100
/// tokens), so one tenant's burst cannot take the API from the others. A refusal says when enough
/// tokens will be back.
/// </summary>
internal sealed class TenantRateLimiter : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter;
    private readonly RateLimitOptions _options;

    public TenantRateLimiter(RateLimitOptions options)
    {
        _options = options;
        _limiter = PartitionedRateLimiter.Create<string, string>(tenant =>
        {
            var limits = options.Tenants.GetValueOrDefault(tenant) ?? options;
            return RateLimitPartition.GetTokenBucketLimiter(tenant, _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = Math.Max(1, limits.Burst),
                // Refill often for high rates; one token per 1/rate seconds for low ones.
                TokensPerPeriod = limits.PermitsPerSecond >= 10 ? (int)Math.Ceiling(limits.PermitsPerSecond / 10) : 1,
                ReplenishmentPeriod = limits.PermitsPerSecond >= 10
                    ? TimeSpan.FromMilliseconds(100)
                    : TimeSpan.FromSeconds(1 / Math.Max(limits.PermitsPerSecond, 0.001)),
                QueueLimit = 0,
                AutoReplenishment = true,
            });
        });
    }

    /// <summary>The most jobs the tenant may submit at once: a bulk submit of more can never be admitted.</summary>
    public int BurstFor(string tenant) => Math.Max(1, (_options.Tenants.GetValueOrDefault(tenant) ?? _options).Burst);

    /// <summary>Null when the tenant may submit <paramref name="jobs"/> jobs now (they are taken); else how long to wait.</summary>
    public TimeSpan? TryTake(string tenant, int jobs)
    {
        using var lease = _limiter.AttemptAcquire(tenant, jobs);
        return lease.IsAcquired ? null : lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
    }

    public void Dispose() => _limiter.Dispose();
}
