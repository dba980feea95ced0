using System.ComponentModel.DataAnnotations;
using System.Threading.RateLimiting;
using CqrsInference.Api.Http;
using CqrsInference.Api.Security;
using Microsoft.AspNetCore.Http.HttpResults;

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

/// <summary><c>Api:Streams</c>: how many Server-Sent Events streams a tenant may hold open at once on one API instance.</summary>
internal sealed class StreamLimitOptions
{
    /// <summary>Streams a tenant may hold open at once (<c>/v1/jobs/{id}/stream</c> and <c>/v1/events/stream</c> together).</summary>
    [Range(1, 1_000_000)]
    public int PerTenant { get; set; } = 256;

    /// <summary>Per-tenant exceptions to <see cref="PerTenant"/>.</summary>
    public Dictionary<string, int> Tenants { get; set; } = [];

    /// <summary>What is wrong with the per-tenant exceptions, if anything.</summary>
    public static string? Problem(StreamLimitOptions options) =>
        options.Tenants.Where(t => t.Value < 1).Select(t => $"Api:Streams:Tenants:{t.Key} must be at least 1 (it is {t.Value}).").FirstOrDefault();
}

/// <summary>
/// A stream holds a connection, a subscription and a buffer for as long as its client keeps it
/// open, so one tenant's client that opens them in a loop could hold the instance's memory and
/// connections from the others: each tenant may hold <see cref="StreamLimitOptions.PerTenant"/> at
/// once on this instance, the operator's streams counted with its own tenant's.
/// </summary>
internal sealed class TenantStreamLimiter : IDisposable
{
    /// <summary>When a refused client should try again: streams end when their clients go, not on a clock.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    private readonly PartitionedRateLimiter<string> _limiter;
    private readonly StreamLimitOptions _options;

    public TenantStreamLimiter(StreamLimitOptions options)
    {
        _options = options;
        _limiter = PartitionedRateLimiter.Create<string, string>(tenant => RateLimitPartition.GetConcurrencyLimiter(tenant,
            _ => new ConcurrencyLimiterOptions { PermitLimit = LimitFor(tenant), QueueLimit = 0 }));
    }

    public int LimitFor(string tenant) => _options.Tenants.GetValueOrDefault(tenant, _options.PerTenant);

    /// <summary>
    /// Null when the caller's tenant may open one more stream (its place is given back when the
    /// response ends); else the 429 to answer.
    /// </summary>
    public ProblemHttpResult? Open(ApiCaller caller, HttpResponse response)
    {
        var lease = _limiter.AttemptAcquire(caller.Tenant);
        if (lease.IsAcquired)
        {
            response.RegisterForDispose(lease);
            return null;
        }

        lease.Dispose();
        return Problems.TooManyRequests(response.HttpContext, "Too many streams",
            $"Tenant '{caller.Tenant}' holds {LimitFor(caller.Tenant)} event streams open on this instance, its limit (Api:Streams:PerTenant); "
            + "close one, or retry later.", RetryAfter);
    }

    public void Dispose() => _limiter.Dispose();
}
