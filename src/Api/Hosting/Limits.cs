using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.RateLimiting;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Messaging;
using Marten;
using NATS.Client.JetStream;

namespace CqrsInference.Api.Hosting;

/// <summary>Per-tenant submit rate, from <c>Api:RateLimit</c> (a default and per-tenant overrides).</summary>
public sealed class RateLimitOptions
{
    public double PermitsPerSecond { get; set; } = 2000;

    public int Burst { get; set; } = 4000;

    public Dictionary<string, RateLimitOptions> Tenants { get; set; } = [];
}

public static class Limits
{
    public const string SubmitPolicy = "submit";

    /// <summary>
    /// A token bucket per tenant on submits: one tenant's burst cannot take the API from the
    /// others. Refusals are 429 problem details with Retry-After.
    /// </summary>
    public static IServiceCollection AddTenantRateLimits(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection("Api:RateLimit").Get<RateLimitOptions>() ?? new RateLimitOptions();
        services.AddRateLimiter(limiter =>
        {
            limiter.AddPolicy(SubmitPolicy, http =>
            {
                var tenant = (http.Items[ApiCaller.ItemKey] as ApiCaller)?.Tenant ?? "?";
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
            limiter.OnRejected = async (context, ct) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                context.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests",
                    detail: $"This tenant's submit rate is over its limit; retry after {seconds} s.").ExecuteAsync(context.HttpContext);
            };
        });
        return services;
    }
}

/// <summary>
/// Per-tenant daily quota of submitted jobs (<c>Api:Quota:JobsPerDay</c>, per-tenant overrides
/// under <c>Api:Quota:Tenants:&lt;tenant&gt;</c>; 0 = unlimited). Counted from the read model, so it
/// holds across API instances; refusals are 429 with Retry-After until the next UTC day.
/// </summary>
public sealed class TenantQuota(IConfiguration configuration, TimeProvider clock)
{
    private readonly long _default = configuration.GetValue<long>("Api:Quota:JobsPerDay", 0);

    public long LimitFor(string tenant) => configuration.GetValue<long?>($"Api:Quota:Tenants:{tenant}") ?? _default;

    /// <summary>Null when the tenant may submit; else the limit and the time until it resets.</summary>
    public async Task<(long Limit, TimeSpan RetryAfter)?> ExhaustedAsync(string tenant, IQuerySession session, CancellationToken ct)
    {
        var limit = LimitFor(tenant);
        if (limit <= 0)
        {
            return null;
        }

        var now = clock.GetUtcNow();
        var today = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
        var used = await session.Query<Projections.JobStatus.JobStatus>().Where(j => j.Tenant == tenant && j.SubmittedAt >= today).CountAsync(ct);
        return used >= limit ? (limit, today.AddDays(1) - now) : null;
    }
}

/// <summary>
/// Queue-depth backpressure: when a model's queue holds more than <c>Submit:MaxQueueDepth</c>
/// waiting jobs, new submits for it get 503 with Retry-After instead of growing the queue without
/// bound. The depth is the sum over the model's queues (every region, priority and tenant), read at
/// most every half second.
/// </summary>
public sealed class QueueDepthGuard(JobQueues queues, IConfiguration configuration, TimeProvider clock)
{
    private readonly long _maxDepth = configuration.GetValue<long>("Submit:MaxQueueDepth", 100_000);
    private readonly ConcurrentDictionary<string, (long Depth, DateTimeOffset ReadAt)> _depths = new();

    public long MaxDepth => _maxDepth;

    public async ValueTask<long?> OverLimitAsync(string model, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        if (!_depths.TryGetValue(model, out var known) || now - known.ReadAt > TimeSpan.FromMilliseconds(500))
        {
            try
            {
                known = ((await queues.ListAsync(model, ct)).Sum(q => q.Waiting), now);
                _depths[model] = known;
            }
            catch (Exception e) when (e is NatsJSException or NATS.Client.Core.NatsException or TimeoutException)
            {
                // NATS is slow or unreachable: no depth to judge by.
                return null;
            }
        }

        return known.Depth > _maxDepth ? known.Depth : null;
    }
}
