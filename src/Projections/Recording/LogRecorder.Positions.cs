using System.Diagnostics;
using System.Threading.Channels;
using Marten;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Projections.Recording;

/// <summary>Where the recorder loop starts (its consumer, from the checkpoint) and how far it has seen the stream.</summary>
internal abstract partial class LogRecorder
{
    /// <summary>
    /// The checkpoint in PostgreSQL, not the consumer's ack state, says where recording resumes: the
    /// leader recreates the durable consumer to deliver from the message after it. Delivery is then
    /// in log order, so a run left unacknowledged by a crash is delivered again before anything
    /// newer, and anything at or below the checkpoint is known to be recorded.
    /// </summary>
    private async Task PositionConsumerAsync(CancellationToken ct)
    {
        try
        {
            await js.DeleteConsumerAsync(source.Stream, source.Consumer, ct);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404 && e.Error.ErrCode != 10059)
        {
            // No such consumer (10059 would be: no such stream, which creating it reports below).
        }

        await js.CreateOrUpdateConsumerAsync(
            source.Stream,
            new ConsumerConfig(source.Consumer)
            {
                FilterSubject = source.FilterSubject,
                AckPolicy = ConsumerConfigAckPolicy.All,
                AckWait = options.AckWait,
                MaxAckPending = 50_000,
                DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartSequence,
                OptStartSeq = Position + 1,
                Description = source.Description,
            },
            ct);
        _run.Restart();
        await WarnIfExpiredAsync(ct);
    }

    /// <summary>
    /// Messages past <see cref="SeenUpTo"/> that the stream no longer holds (older than its maximum
    /// age): those of this recorder's subjects among them were never recorded. The mark of how far
    /// the stream was seen belongs to this incarnation of the stream (made again, it starts over).
    /// </summary>
    private async Task WarnIfExpiredAsync(CancellationToken ct)
    {
        var info = (await js.GetStreamAsync(source.Stream, cancellationToken: ct)).Info;
        _seenId = $"{source.CheckpointId}:seen:{info.Created.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        Volatile.Write(ref _seen, await RecorderLease.LoadCheckpointAsync(store, _seenId, ct));
        var first = info.State.FirstSeq;
        if (first > SeenUpTo + 1)
        {
            LogExpired(logger, source.Stream, SeenUpTo + 1, first - 1, source.Consumer, source.FilterSubject ?? ">");
        }
    }

    /// <summary>
    /// Idle: asks the consumer how many it delivered (more than arrived here is a hole at the tail:
    /// false) and, at most every <see cref="MarkSeenEvery"/> (or when <paramref name="force"/>d),
    /// writes how far the stream has gone with nothing of this recorder's left to deliver or to
    /// acknowledge. The stream's last sequence is read first: every message of these subjects up to
    /// it was then in the stream, so none pending and none unacknowledged means each was recorded
    /// (a run is acknowledged only once it is).
    /// </summary>
    private async Task<bool> MarkSeenAsync(ChannelReader<INatsJSMsg<byte[]>> reader, bool force, CancellationToken ct)
    {
        var due = force || Stopwatch.GetElapsedTime(_seenMarkedAt) >= MarkSeenEvery;
        var last = due ? (await js.GetStreamAsync(source.Stream, cancellationToken: ct)).Info.State.LastSeq : 0;
        var consumer = (await js.GetConsumerAsync(source.Stream, source.Consumer, ct)).Info;
        if (consumer.Delivered.ConsumerSeq > _run.LastDelivery && reader.Count == 0)
        {
            return false;
        }

        if (due && _seenId is { } id && last > SeenUpTo && consumer.NumPending == 0 && consumer.NumAckPending == 0 && reader.Count == 0)
        {
            await using var session = store.LightweightSession();
            session.Store(new RecorderCheckpoint(id, last));
            await session.SaveChangesAsync(ct);
            Volatile.Write(ref _seen, last);
            _seenMarkedAt = Stopwatch.GetTimestamp();
        }

        return true;
    }
}
