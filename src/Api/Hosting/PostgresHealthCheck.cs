using Marten;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CqrsInference.Api.Hosting;

/// <summary>Readiness of the roles that use the event store: PostgreSQL answers a query.</summary>
internal sealed class PostgresHealthCheck(Projections.EventStoreFacts facts) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            return HealthCheckResult.Healthy($"PostgreSQL answers; highest event sequence {await facts.HighestSequenceAsync(cancellationToken)}");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy("PostgreSQL does not answer", e);
        }
    }
}
