using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;

namespace CqrsInference.Projections.Recording;

/// <summary>
/// The gap rule of both recorders: record only messages that continue the checkpoint without a
/// hole. A message delivered but lost with its connection stays pending until its ack wait ends;
/// recording later ones first would move the checkpoint past it and skip it for good.
/// </summary>
internal static partial class LogRun
{
    /// <summary>
    /// Records the part of the batch that continues the checkpoint (retrying while PostgreSQL
    /// fails), then acknowledges what is recorded. Returns false when the batch had a hole after
    /// the checkpoint: the caller starts again from the checkpoint, in order.
    /// </summary>
    public static async Task<bool> RecordInOrderAsync(
        INatsJSContext js, string stream, IReadOnlyList<INatsJSMsg<byte[]>> batch, Func<ulong> checkpoint,
        Func<IReadOnlyList<INatsJSMsg<byte[]>>, Task> record, ILogger logger, CancellationToken ct)
    {
        var run = await ContiguousAsync(js, stream, batch, checkpoint(), (from, to) => LogExpired(logger, stream, from, to), ct);
        if (run.Count > 0)
        {
            await RecordWithRetryAsync(run, () => record(run), (count, seconds, reason) => LogRecordFailed(logger, count, stream, seconds, reason), ct);
        }

        foreach (var msg in batch.Where(m => Sequence(m) <= checkpoint()))
        {
            await msg.AckAsync(cancellationToken: ct);
        }

        return !batch.Any(m => Sequence(m) > checkpoint());
    }

    public static ulong Sequence(INatsJSMsg<byte[]> msg) => msg.Metadata?.Sequence.Stream ?? 0;

    /// <summary>
    /// The messages of the batch that continue <paramref name="checkpoint"/>, in order. A hole left
    /// by messages the stream no longer holds (older than its maximum age, or deleted) is stepped
    /// over and reported through <paramref name="expired"/>.
    /// </summary>
    public static async Task<List<INatsJSMsg<byte[]>>> ContiguousAsync(
        INatsJSContext js, string stream, IReadOnlyList<INatsJSMsg<byte[]>> batch, ulong checkpoint, Action<ulong, ulong> expired, CancellationToken ct)
    {
        var expected = checkpoint + 1;
        var fresh = batch.Where(m => Sequence(m) >= expected).DistinctBy(Sequence).OrderBy(Sequence).ToList();
        if (fresh.Count > 0 && Sequence(fresh[0]) != expected)
        {
            var first = (await js.GetStreamAsync(stream, cancellationToken: ct)).Info.State.FirstSeq;
            if (first > expected)
            {
                expired(expected, first - 1);
                expected = first;
            }
        }

        var run = new List<INatsJSMsg<byte[]>>(fresh.Count);
        foreach (var msg in fresh)
        {
            // A hole is a message still to come, unless the stream no longer holds it (deleted):
            // then it is stepped over, or recording would stop at it for good.
            while (Sequence(msg) > expected && run.Count == 0 && !await ExistsAsync(js, stream, expected, ct))
            {
                expired(expected, expected);
                expected++;
            }

            if (Sequence(msg) != expected)
            {
                break;
            }

            run.Add(msg);
            expected++;
        }

        return run;
    }

    private static async Task<bool> ExistsAsync(INatsJSContext js, string stream, ulong sequence, CancellationToken ct)
    {
        try
        {
            var info = await js.GetStreamAsync(stream, cancellationToken: ct);
            await info.GetAsync(new NATS.Client.JetStream.Models.StreamMsgGetRequest { Seq = sequence }, ct);
            return true;
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return false;
        }
    }

    /// <summary>
    /// Records a batch until it is recorded. PostgreSQL down or failing: the events wait in
    /// JetStream, unacknowledged (progress acks keep them), and the batch is retried as it was, so
    /// nothing is skipped or recorded twice. A NATS failure goes to the caller, which starts again
    /// from its checkpoint.
    /// </summary>
    public static async Task RecordWithRetryAsync(
        IReadOnlyList<INatsJSMsg<byte[]>> batch, Func<Task> record, Action<int, double, string> failed, CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                await record();
                return;
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is not NATS.Client.Core.NatsException)
            {
                failed(batch.Count, delay.TotalSeconds, e.Message);
                await Task.Delay(delay, ct);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
                foreach (var msg in batch)
                {
                    await msg.AckProgressAsync(cancellationToken: ct);
                }
            }
        }
    }

    [LoggerMessage(LogLevel.Error, "{Stream} messages {From} to {To} left the stream (its maximum age, or deleted) before they were recorded")]
    private static partial void LogExpired(ILogger logger, string stream, ulong from, ulong to);

    [LoggerMessage(LogLevel.Warning, "Recording {Count} events of {Stream} failed; retrying in {Seconds}s: {Reason}")]
    private static partial void LogRecordFailed(ILogger logger, int count, string stream, double seconds, string reason);
}
