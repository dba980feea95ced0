using CqrsInference.Messaging;

namespace CqrsInference.Api.Hosting;

/// <summary>Whether this process creates the streams (the API does) or only waits for them.</summary>
internal sealed record TopologyRole(bool CreatesStreams);

/// <summary>
/// Creates the streams and buckets before any role starts (idempotent, on every start) when this
/// process runs the API. Processes of other roles, whose NATS users may not manage streams, wait
/// until the streams exist. Every role then checks that the server maps the log into the
/// partitions it records (<see cref="PartitionProbe"/>).
/// </summary>
internal sealed partial class TopologyInitializer(NatsTopology topology, TopologyRole role, ILogger<TopologyInitializer> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) =>
        StartupRetry.RunAsync(
            async () =>
            {
                await (role.CreatesStreams ? topology.EnsureAsync(cancellationToken) : topology.WaitForStreamsAsync(cancellationToken));
                await topology.VerifyPartitionsAsync(cancellationToken);
            },
            (attempt, reason) => LogRetry(logger, attempt, reason),
            cancellationToken,
            fatal: e => e is InvalidOperationException);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(LogLevel.Warning, "Creating the JetStream topology failed (attempt {Attempt}): {Reason}")]
    private static partial void LogRetry(ILogger logger, int attempt, string reason);
}
