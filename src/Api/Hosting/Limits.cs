using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.RateLimiting;
using CqrsInference.Api.Security;

namespace CqrsInference.Api.Hosting;

/// <summary>Per-tenant submit rate, from <c>Api:RateLimit</c> (a default and per-tenant overrides).</summary>
internal sealed class RateLimitOptions
{
    public double PermitsPerSecond { get; set; } = 2000;

    public int Burst { get; set; } = 4000;

    public Dictionary<string, RateLimitOptions> Tenants { get; set; } = [];
}

internal static class Limits
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
