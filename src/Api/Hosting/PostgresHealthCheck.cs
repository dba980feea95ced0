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
            var highest = await ReadinessChecks.WithinAsync(facts.HighestSequenceAsync, cancellationToken);
            return HealthCheckResult.Healthy($"PostgreSQL answers; highest event sequence {highest}");
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy(ReadinessChecks.Said("PostgreSQL", e), e);
        }
    }
}
