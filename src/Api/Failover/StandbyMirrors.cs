using CqrsInference.Messaging;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace CqrsInference.Api.Failover;

/// <summary>
/// The API role keeps the standby mirrors (<see cref="RegionFailover.EnsureStandbyAsync"/>,
/// idempotent) in every region of <c>Failover:StandbyRegions</c> but the home: at start and every
/// <see cref="FailoverOptions.Every"/>, so a region that comes back gets its mirrors again. A
/// region that does not answer is tried again at the next round. Each round also deletes the
/// mirrors in the home made after the log (<see cref="RegionFailover.DropLateMirrorsAsync"/>).
/// </summary>
internal sealed partial class StandbyMirrors(INatsJSContext js, FailoverOptions options, ILogger<StandbyMirrors> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.StandbyRegions.Count == 0)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Every);
        try
        {
            do
            {
                await EnsureAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>One round: the home is where the log lives now; each other standby region gets its mirrors.</summary>
    public async Task EnsureAsync(CancellationToken ct)
    {
        try
        {
            var log = (await js.GetStreamAsync(NatsTopology.EventsStream, cancellationToken: ct)).Info;
            var home = log.Cluster?.Name;
            var failover = new RegionFailover(js);
            if (home is { Length: > 0 } && await failover.DropLateMirrorsAsync(home, log.Created, ct) is > 0 and var dropped)
            {
                LogLateMirrors(logger, dropped, home);
            }

            foreach (var region in options.StandbyRegions.Where(r => r != home))
            {
                try
                {
                    await failover.EnsureStandbyAsync([region], options.Replicas, ct);
                }
                catch (Exception e) when (e is NatsException or TimeoutException)
                {
                    LogRegionFailed(logger, region, e.Message);
                }
            }
        }
        catch (Exception e) when (e is NatsException or TimeoutException)
        {
            // The log does not answer (a takeover under way, NATS away): the next round.
            LogFailed(logger, e.Message);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Standby mirrors in region {Region} could not be made (next round tries again): {Reason}")]
    private static partial void LogRegionFailed(ILogger logger, string region, string reason);

    [LoggerMessage(LogLevel.Warning, "Deleted {Count} mirrors in region {Home}, where the log lives, made after the log (a standby request delivered after a takeover)")]
    private static partial void LogLateMirrors(ILogger logger, int count, string home);

    [LoggerMessage(LogLevel.Debug, "Standby mirrors: the log did not answer: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
