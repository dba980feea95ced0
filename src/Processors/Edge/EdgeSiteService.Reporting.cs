using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace CqrsInference.Processors.Edge;

/// <summary>What the edge role reports: its heartbeats (to the core, through the site's stream) and its log.</summary>
internal sealed partial class EdgeSiteService
{
    private async Task<long> HeartbeatAsync(long since, int backlog, CancellationToken ct)
    {
        var now = clock.GetTimestamp();
        try
        {
            var beat = new V1.EdgeSiteHeartbeat(options.Name, _worker, clock.GetUtcNow(), Math.Round(clock.GetElapsedTime(since, now).TotalSeconds, 3), Math.Round(_busySinceHeartbeat, 6), backlog);
            await MakeSiteStreamIfUnsureAsync(ct);
            _mark!.Reserve(1);
            await PublishEventAsync(beat, "heartbeat", ct);
            _busySinceHeartbeat = 0;
            return now;
        }
        catch (Exception e) when (e is NatsException or TimeoutException or IOException && !ct.IsCancellationRequested)
        {
            // The site's own server is down (or its stream gone), or the state directory cannot be
            // written: the next heartbeat covers this interval too.
            _siteStreamUnsure |= e is NatsException;
            _watch.Failed(e);
            return since;
        }
    }

    /// <summary>Once per file: one still changing after <see cref="EdgeSiteOptions.StallAfter"/> holds back every name after it (a file written in place, never renamed in).</summary>
    private void WarnIfHeldBack(int waiting)
    {
        if (_input!.HeldBack is { } held && clock.GetUtcNow() - held.FirstSeen >= options.StallAfter && held.Name != _warnedHeldBack)
        {
            _warnedHeldBack = held.Name;
            LogHeldBack(logger, EdgeInput.ItemIdOf(held.Name), (int)(clock.GetUtcNow() - held.FirstSeen).TotalSeconds, waiting - 1);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Input file {Name} has been changing for {Seconds} s and is not taken until it has settled (EdgeSite:SettleTime); the {Behind} files after it in name order wait behind it (write files elsewhere and rename them in when whole)")]
    private static partial void LogHeldBack(ILogger logger, string name, int seconds, int behind);

    [LoggerMessage(LogLevel.Information, "Serving edge site {Site}: raw feed from {Input}, {Done} items already done")]
    private static partial void LogServing(ILogger logger, string site, string input, int done);

    [LoggerMessage(LogLevel.Debug, "Item {ItemId}: {RawBytes} raw bytes, {Events} detections, {EventBytes} event bytes sent")]
    private static partial void LogProcessed(ILogger logger, string itemId, long rawBytes, int events, long eventBytes);

    [LoggerMessage(LogLevel.Warning, "Edge {What} failed (attempt {Attempt}); retrying: {Reason}")]
    private static partial void LogRetry(ILogger logger, string what, int attempt, string reason);

    [LoggerMessage(LogLevel.Error, "Raw item {ItemId} cannot be read ({Code}) and is recorded as failed: {Reason}")]
    private static partial void LogUnreadable(ILogger logger, string itemId, string code, string reason);

    [LoggerMessage(LogLevel.Warning, "The raw queue {Stream} was gone (deleted, or lost with the site's store) and is made again; what devices published meanwhile is lost")]
    private static partial void LogRawQueueMadeAgain(ILogger logger, string stream);

    [LoggerMessage(LogLevel.Warning, "Raw item {ItemId} was taken away before it was read")]
    private static partial void LogGone(ILogger logger, string itemId);
}
