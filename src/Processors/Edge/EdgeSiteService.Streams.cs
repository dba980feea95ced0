using CqrsInference.Messaging;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Processors.Edge;

/// <summary>The site's streams on its own server: made at start, and made again when they are gone.</summary>
internal sealed partial class EdgeSiteService
{
    /// <summary>The raw queue made again if it is gone (deleted, or lost with the site's store).</summary>
    private async Task CheckRawAsync(EdgeRawQueue? raw, CancellationToken ct)
    {
        try
        {
            if (raw is not null && await raw.CheckAsync(ct))
            {
                LogRawQueueMadeAgain(logger, EdgeTopology.RawStream(options.Name));
            }
        }
        catch (Exception e) when (e is NatsException or TimeoutException && !ct.IsCancellationRequested)
        {
            _watch.Failed(e);
        }
    }

    /// <summary>
    /// The site's stream again before the next publish, after publishes failed in a way it being
    /// gone explains (the site's store lost, or replaced by an empty one): a publish into nothing
    /// waited for it for ever, until a restart. Inside the publish's own retry, so a stream made
    /// but not yet moved past the mark (its purge failed) is finished before anything lands at 1.
    /// </summary>
    private async Task MakeSiteStreamIfUnsureAsync(CancellationToken ct)
    {
        if (_siteStreamUnsure)
        {
            await MakeSiteStreamAsync(ct);
            _siteStreamUnsure = false;
        }
    }

    private Task EnsureStreamAsync(CancellationToken ct) =>
        RetryAsync("creating the site stream", async () =>
        {
            await MakeSiteStreamAsync(ct);
            return true;
        }, ct);

    /// <summary>
    /// The site's stream, made if it is not there; one made again after the site's store was lost
    /// continues after the sequence mark (<see cref="EdgeStreamMark"/>), so the core's sourcing
    /// takes its events.
    /// </summary>
    private async Task MakeSiteStreamAsync(CancellationToken ct)
    {
        var stream = await EdgeTopology.EnsureSiteAsync(js, options.Name, options.DuplicateWindow, options.StreamMaxAge, ct);
        var state = stream.Info.State;
        _mark!.Acknowledged(state.LastSeq);
        if (state.Messages == 0 && state.LastSeq < _mark.Mark)
        {
            // An empty stream's purge up to a sequence past its end makes that its next sequence.
            await stream.PurgeAsync(new StreamPurgeRequest { Seq = _mark.Mark + 1 }, ct);
            _mark.Acknowledged(_mark.Mark);
            LogContinued(logger, EdgeTopology.SiteStream(options.Name), state.LastSeq, _mark.Mark + 1);
        }
    }

    /// <summary>Publishes one event to the site's stream (the mark reserved before); returns the bytes it sent.</summary>
    private async Task<long> PublishEventAsync(object @event, string kind, CancellationToken ct)
    {
        var (bytes, sequence) = await EdgeTopology.PublishAsync(js, @event, kind, ct);
        _mark!.Acknowledged(sequence);
        return bytes;
    }

    [LoggerMessage(LogLevel.Warning, "The site stream {Stream} was empty at sequence {Last} (made again after the site's store was lost, or every event aged out); it continues at sequence {Next}, after every sequence the site may have published before, so the core's sourcing takes what follows")]
    private static partial void LogContinued(ILogger logger, string stream, ulong last, ulong next);
}
