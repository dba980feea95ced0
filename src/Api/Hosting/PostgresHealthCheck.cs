using Marten;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CqrsInference.Api.Hosting;

/// <summary>Readiness of the roles that use the event store: PostgreSQL answers a query.</summary>
internal sealed class PostgresHealthCheck(IDocumentStore store) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var statistics = await store.Advanced.FetchEventStoreStatistics(token: cancellationToken);
            return HealthCheckResult.Healthy($"PostgreSQL answers; {statistics.EventCount} events recorded");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy("PostgreSQL does not answer", e);
        }
    }
}
