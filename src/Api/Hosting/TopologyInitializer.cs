using CqrsInference.Commands.Messaging;
using CqrsInference.Commands.Models;

namespace CqrsInference.Api.Hosting;

/// <summary>Whether this process creates the streams (the API does) or only waits for them.</summary>
public sealed record TopologyRole(bool CreatesStreams);

/// <summary>
/// Creates the streams, buckets and processor consumers before any role starts (idempotent, on
/// every start) when this process runs the API. Processes of other roles, whose NATS users may not
/// manage streams, wait until the streams exist.
/// </summary>
public sealed partial class TopologyInitializer(NatsTopology topology, ModelCatalog catalog, TopologyRole role, ILogger<TopologyInitializer> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(250);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                if (role.CreatesStreams)
                {
                    await topology.EnsureAsync(catalog.All.Select(m => m.Name), cancellationToken);
                }
                else
                {
                    await topology.WaitForStreamsAsync(cancellationToken);
                }

                return;
            }
            catch (Exception e) when (attempt < 60 && e is not OperationCanceledException)
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
