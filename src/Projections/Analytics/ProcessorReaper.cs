using System.ComponentModel.DataAnnotations;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using Marten;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Projections.Analytics;

public sealed class AnalyticsOptions
{
    /// <summary>A processor silent for this long is recorded offline (reason <c>timeout</c>).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan ProcessorTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Price of one device-hour per device class (e.g. <c>cpu: 0.10</c>, <c>h100: 4.00</c>); cost = busy seconds × price / 3600.</summary>
    public Dictionary<string, decimal> PricePerHour { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

/// <summary>
/// Closes processors that disappeared without saying so: once a processor's last sign of life is
/// older than the timeout, it appends <see cref="V1.ProcessorOffline"/> (reason <c>timeout</c>, at
/// the last heartbeat) to the processor's stream, so utilization stops counting it. Silence is
/// judged from what is recorded, so only once the records can be trusted: a whole timeout after
/// the reaper starts and after PostgreSQL last failed it. Until then the heartbeats sent meanwhile
/// may still be on their way through the recorders (a 75 s outage recorded a processor that
/// heartbeated throughout as offline, because the reaper ran before the recorders caught up).
/// </summary>
internal sealed partial class ProcessorReaper(IDocumentStore store, AnalyticsOptions options, TimeProvider clock, ILogger<ProcessorReaper> logger, OutageWatches? watches = null)
    : BackgroundService
{
    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For("processor reaper");

    /// <summary>From when silence is judged: <see cref="AnalyticsOptions.ProcessorTimeout"/> after this.</summary>
    private DateTimeOffset _trustedSince = clock.GetUtcNow();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // PostgreSQL away: the round is tried again with backoff (logged once); anything else is logged and retried next round.
        var outages = Retries.ThroughOutages(_watch, Outages.IsOutage, clock);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(1, options.ProcessorTimeout.TotalSeconds / 3)), clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await outages.ExecuteAsync(async ct =>
                    {
                        try
                        {
                            await ReapAsync(ct);
                        }
                        catch (Exception e) when (Outages.IsOutage(e))
                        {
                            StoreFailed();
                            throw;
                        }
                    }, stoppingToken);
                    _watch.Worked();
                }
                catch (Exception e) when (e is Npgsql.NpgsqlException or Marten.Exceptions.MartenCommandException or InvalidOperationException)
                {
                    LogFailed(logger, e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>PostgreSQL failed a round: what the recorders could not record meanwhile is not silence.</summary>
    public void StoreFailed() => _trustedSince = clock.GetUtcNow();

    public async Task<int> ReapAsync(CancellationToken ct)
    {
        var cutoff = clock.GetUtcNow() - options.ProcessorTimeout;
        if (cutoff < _trustedSince)
        {
            return 0;
        }

        await using var session = store.LightweightSession();
        var silent = await session.Query<ProcessorStatus>().Where(p => p.Online && p.LastSeen < cutoff).ToListAsync(ct);
        foreach (var processor in silent)
        {
            var offline = new V1.ProcessorOffline(processor.Worker, processor.LastSeen, "timeout");
            var wrapper = session.Events.BuildEvent(offline);
            wrapper.Id = DeterministicGuid.Create(processor.Id, $"{EventNames.ProcessorOffline}\n{processor.LastSeen.UtcTicks}");
            session.Events.Append(processor.Id, wrapper);
            LogReaped(logger, processor.Worker, processor.LastSeen);
        }

        if (silent.Count > 0)
        {
            await session.SaveChangesAsync(ct);
        }

        return silent.Count;
    }

    [LoggerMessage(LogLevel.Warning, "Processor {Worker} went silent after {LastSeen}; recorded offline (timeout)")]
    private static partial void LogReaped(ILogger logger, string worker, DateTimeOffset lastSeen);

    [LoggerMessage(LogLevel.Warning, "Closing silent processors failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
