using CqrsInference.Messaging;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Processors.Edge;

/// <summary>
/// The site's raw items that arrive over MQTT: its work queue <c>RAW_&lt;site&gt;</c>, read oldest
/// first by sequence (the stream's message get: the subject comes inside a JSON answer, so a topic
/// with control characters is an item like any other, where a consumer's delivery broke the
/// client's connection), an item deleted from the queue once its events are stored. An item's id
/// carries the queue's creation time and the message's sequence in it: a queue made again
/// (deleted, or lost with the site's store) numbers from 1, and with the sequence alone a new item
/// on a device's fixed topic took the id of an old one and was dropped as its copy. A queue that is
/// gone is made again (<see cref="CheckAsync"/>): the devices' publishes went into nothing,
/// acknowledged, until the processor restarted.
/// </summary>
internal sealed class EdgeRawQueue(INatsJSContext js, EdgeSiteOptions options)
{
    /// <summary>Items taken per look at the queue, between which the site does its other work.</summary>
    private const int PerLook = 16;

    /// <summary>JetStream's error codes: no message at or after the sequence asked; no such message to delete; no such stream.</summary>
    private const int NoMessage = 10037;
    private const int NothingToDelete = 10057;
    private const int NoStream = 10059;

    private INatsJSStream? _stream;
    private DateTimeOffset _created;
    private bool _madeAgain;

    public async Task EnsureAsync(CancellationToken ct)
    {
        _stream = await EdgeTopology.EnsureRawAsync(js, options.Name, options.StreamMaxAge, ct);
        _created = _stream.Info.Created;
    }

    /// <summary>Makes the queue again when it is gone; true when it did (here, or when a look found it gone since the last check).</summary>
    public async Task<bool> CheckAsync(CancellationToken ct)
    {
        try
        {
            await _stream!.RefreshAsync(ct);
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == NoStream)
        {
            await EnsureAsync(ct);
            _madeAgain = true;
        }

        var madeAgain = _madeAgain;
        _madeAgain = false;
        return madeAgain;
    }

    /// <summary>The oldest items waiting, at most <see cref="PerLook"/>, in sequence order.</summary>
    public async IAsyncEnumerable<RawMessage> WaitingAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        ulong next = 1;
        for (var taken = 0; taken < PerLook && await NextAsync(next, ct) is { } message; taken++)
        {
            yield return message;
            next = message.Sequence + 1;
        }
    }

    /// <summary>
    /// The item's events are stored: it leaves the queue. One already gone (aged out) is done too;
    /// one of a queue made again since it was read is not deleted (its sequence now names another item).
    /// </summary>
    public async Task DoneAsync(RawMessage message, CancellationToken ct)
    {
        if (message.QueueCreated != _created)
        {
            return;
        }

        try
        {
            await _stream!.DeleteMessageAsync(new StreamMsgDeleteRequest { Seq = message.Sequence, NoErase = true }, ct);
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == NothingToDelete)
        {
            // Gone already: aged out of the queue (its maximum age), or deleted by an operator.
        }
    }

    /// <summary>
    /// <c>mqtt-&lt;queue created, UTC, to the millisecond&gt;-&lt;sequence&gt;-&lt;item&gt;.&lt;kind&gt;</c>: unique for
    /// the site's life, and the same when redone. To the second, a queue made again within the
    /// second it was first made in (the site makes a lost queue again at its next look) gave its
    /// first item the id of the old queue's first, dropped as its copy.
    /// </summary>
    public static string ItemId(RawMessage message, string item, string kind) =>
        EdgeInput.ItemIdOf($"mqtt-{message.QueueCreated.UtcDateTime:yyyyMMddHHmmssfff}-{message.Sequence:D12}-{item}.{kind}");

    private async Task<RawMessage?> NextAsync(ulong from, CancellationToken ct)
    {
        try
        {
            var stored = (await _stream!.GetAsync(new StreamMsgGetRequest { Seq = from, NextBySubj = EdgeTopology.RawSubjects(options.Name) }, ct)).Message;
            return new RawMessage(stored.Subject, stored.Seq, stored.Data.ToArray(), _created);
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == NoMessage)
        {
            return null;
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == NoStream)
        {
            // Gone (deleted, or lost with the site's store): made again now, not at the next
            // heartbeat, so that devices' publishes meanwhile are not acknowledged into nothing.
            await EnsureAsync(ct);
            _madeAgain = true;
            return null;
        }
    }
}

/// <summary>A raw item in the site's queue: its subject (the MQTT topic, converted), its sequence, its bytes, and when the queue it came from was made.</summary>
internal sealed record RawMessage(string Subject, ulong Sequence, byte[] Data, DateTimeOffset QueueCreated);
