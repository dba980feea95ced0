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
    public async Task StartAsync(CancellationToken cancellationToken) =>
        await Retries.Startup(e => e is not (OperationCanceledException or InvalidOperationException), f => LogRetry(logger, f.Attempt, f.Reason))
            .ExecuteAsync(
                async ct =>
                {
                    await (role.CreatesStreams ? topology.EnsureAsync(ct) : topology.WaitForStreamsAsync(ct));
                    await topology.VerifyPartitionsAsync(ct);
                },
                cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(LogLevel.Warning, "Creating the JetStream topology failed (attempt {Attempt}): {Reason}")]
    private static partial void LogRetry(ILogger logger, int attempt, string reason);
}

/// <summary>The API role's housekeeping of the queues' consumers (<see cref="QueueHousekeeping"/>), every few seconds.</summary>
internal sealed partial class QueueHousekeepingService(QueueHousekeeping housekeeping, ILogger<QueueHousekeepingService> logger) : BackgroundService
{
    public static readonly TimeSpan Every = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Every);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    var (restored, retired) = await housekeeping.RunAsync(stoppingToken);
                    if (restored + retired > 0)
                    {
                        LogHousekeeping(logger, restored, retired);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // NATS away: the next round tries again.
                    LogFailed(logger, e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(LogLevel.Information, "Queues: {Restored} holding jobs without a consumer given one again, {Retired} idle ones retired")]
    private static partial void LogHousekeeping(ILogger logger, int restored, int retired);

    [LoggerMessage(LogLevel.Debug, "Queue housekeeping failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
