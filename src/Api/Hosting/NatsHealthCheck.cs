using Microsoft.Extensions.Diagnostics.HealthChecks;
using NATS.Client.Core;

namespace CqrsInference.Api.Hosting;

internal sealed class NatsHealthCheck(INatsConnection nats) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var rtt = await nats.PingAsync(cancellationToken);
            return HealthCheckResult.Healthy($"NATS {nats.ServerInfo?.Version} answered in {rtt.TotalMilliseconds:F1} ms");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy("NATS does not answer", e);
        }
    }
}
