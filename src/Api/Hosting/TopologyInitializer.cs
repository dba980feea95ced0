using CqrsInference.Messaging;
using CqrsInference.Commands.Models;

namespace CqrsInference.Api.Hosting;

/// <summary>Whether this process creates the streams (the API does) or only waits for them.</summary>
internal sealed record TopologyRole(bool CreatesStreams);

/// <summary>
/// Creates the streams, buckets and processor consumers before any role starts (idempotent, on
/// every start) when this process runs the API. Processes of other roles, whose NATS users may not
/// manage streams, wait until the streams exist.
/// </summary>
internal sealed partial class TopologyInitializer(NatsTopology topology, ModelCatalog catalog, TopologyRole role, ILogger<TopologyInitializer> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) =>
        StartupRetry.RunAsync(
            () => role.CreatesStreams
                ? topology.EnsureAsync(catalog.All.Select(m => m.Name), cancellationToken)
                : topology.WaitForStreamsAsync(cancellationToken),
            (attempt, reason) => LogRetry(logger, attempt, reason),
            cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(LogLevel.Warning, "Creating the JetStream topology failed (attempt {Attempt}): {Reason}")]
    private static partial void LogRetry(ILogger logger, int attempt, string reason);
}
