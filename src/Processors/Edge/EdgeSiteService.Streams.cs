using CqrsInference.Messaging;
using NATS.Client.Core;

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
    /// The site's stream again, in case it is what is missing (the site's store lost, or replaced
    /// by an empty one): a publish into nothing waited for it for ever, until a restart. Best
    /// effort: a server that is away fails this too, and the retry goes on.
    /// </summary>
    private async Task RemakeSiteStreamAsync(CancellationToken ct)
    {
        try
        {
            await MakeSiteStreamAsync(ct);
        }
        catch (Exception e) when (e is NatsException or TimeoutException && !ct.IsCancellationRequested)
        {
            // Still away.
        }
    }

    private Task EnsureStreamAsync(CancellationToken ct) =>
        RetryAsync("creating the site stream", async () =>
        {
            await MakeSiteStreamAsync(ct);
            return true;
        }, ct);

    private Task MakeSiteStreamAsync(CancellationToken ct) => EdgeTopology.EnsureSiteAsync(js, options.Name, options.DuplicateWindow, options.StreamMaxAge, ct);
}
