using CqrsInference.Commands.Messaging;
using CqrsInference.Commands.Models;

namespace CqrsInference.Api.Hosting;

/// <summary>Creates the streams and consumers before any role starts: idempotent, on every start.</summary>
public sealed partial class TopologyInitializer(NatsTopology topology, ModelCatalog catalog, ILogger<TopologyInitializer> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(250);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await topology.EnsureAsync(catalog.All.Select(m => m.Name), cancellationToken);
                return;
            }
            catch (Exception e) when (attempt < 20 && e is not OperationCanceledException)
            {
                LogRetry(logger, attempt, e.Message);
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(3).Ticks));
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(LogLevel.Warning, "Creating the JetStream topology failed (attempt {Attempt}): {Reason}")]
    private static partial void LogRetry(ILogger logger, int attempt, string reason);
}
