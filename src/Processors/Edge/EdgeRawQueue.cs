using CqrsInference.Messaging;
using NATS.Client.JetStream;

namespace CqrsInference.Processors.Edge;

/// <summary>
/// The site's raw items that arrive over MQTT: its work queue <c>RAW_&lt;site&gt;</c> and the
/// processor's durable on it. An item's id carries the queue's creation time and the message's
/// sequence in it: a queue made again (deleted, or lost with the site's store) numbers from 1, and
/// with the sequence alone a new item on a device's fixed topic took the id of an old one and was
/// dropped as its copy. A queue that is gone is made again (<see cref="CheckAsync"/>): the devices'
/// publishes went into nothing, acknowledged, until the processor restarted.
/// </summary>
internal sealed class EdgeRawQueue(INatsJSContext js, EdgeSiteOptions options)
{
    /// <summary>How long a fetch waits at most: a fetch from a queue that is gone waited 30 s, and the site with it.</summary>
    private static readonly TimeSpan FetchExpires = TimeSpan.FromSeconds(2);

    private INatsJSConsumer? _consumer;
    private DateTimeOffset _created;

    public async Task EnsureAsync(CancellationToken ct)
    {
        _consumer = await EdgeTopology.EnsureRawAsync(js, options.Name, options.StreamMaxAge, ct);
        _created = (await js.GetStreamAsync(EdgeTopology.RawStream(options.Name), cancellationToken: ct)).Info.Created;
    }

    /// <summary>Makes the queue again when it is gone; true when it did.</summary>
    public async Task<bool> CheckAsync(CancellationToken ct)
    {
        try
        {
            await _consumer!.RefreshAsync(ct);
            return false;
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            await EnsureAsync(ct);
            return true;
        }
    }

    public IAsyncEnumerable<INatsJSMsg<byte[]>> FetchAsync(CancellationToken ct) =>
        _consumer!.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = 16, Expires = FetchExpires }, cancellationToken: ct);

    /// <summary><c>mqtt-&lt;queue created, UTC&gt;-&lt;sequence&gt;-&lt;item&gt;.&lt;kind&gt;</c>: unique for the site's life, and the same for a redelivery.</summary>
    public string ItemId(INatsJSMsg<byte[]> msg, string item, string kind) =>
        $"mqtt-{_created.UtcDateTime:yyyyMMddHHmmss}-{msg.Metadata?.Sequence.Stream ?? 0:D12}-{item}.{kind}";
}
