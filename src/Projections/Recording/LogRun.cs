using Microsoft.Extensions.Logging;
using CqrsInference.Messaging;
using NATS.Client.JetStream;

namespace CqrsInference.Projections.Recording;

/// <summary>
/// The gap rule of every recorder: record only what continues, without a hole, the deliveries since
/// the consumer was positioned at the checkpoint. A message delivered but lost with its connection
/// stays pending until its ack wait ends; recording later ones first would move the checkpoint past
/// it and skip it for good. The rule is kept on the consumer's delivery sequence, which counts every
/// delivery from 1 after positioning, so it holds for a consumer that reads a whole stream and for
/// one that reads a partition of it (whose stream sequences skip the other partitions' messages).
/// </summary>
internal sealed partial class LogRun(ILogger logger)
{
    private ulong _lastDelivery;

    /// <summary>The delivery sequence of the last delivery taken since the consumer was positioned.</summary>
    public ulong LastDelivery => _lastDelivery;

    /// <summary>The consumer was positioned afresh: its deliveries count from 1 again.</summary>
    public void Restart() => _lastDelivery = 0;

    /// <summary>
    /// Takes a batch in delivery order: the messages after <paramref name="checkpoint"/> that continue
    /// the deliveries without a hole, and the last message taken (to acknowledge, together with all
    /// before it). <paramref name="whole"/> is false when the batch had a hole: the caller records
    /// what was taken, then starts again from the checkpoint.
    /// </summary>
    public (List<INatsJSMsg<byte[]>> Fresh, INatsJSMsg<byte[]>? Last) Take(IReadOnlyList<INatsJSMsg<byte[]>> batch, ulong checkpoint, out bool whole)
    {
        var fresh = new List<INatsJSMsg<byte[]>>(batch.Count);
        INatsJSMsg<byte[]>? last = null;
        whole = true;
        foreach (var msg in batch.OrderBy(Delivery))
        {
            if (Delivery(msg) != _lastDelivery + 1)
            {
                whole = false;
                break;
            }

            _lastDelivery++;
            last = msg;
            if (Sequence(msg) > checkpoint)
            {
                fresh.Add(msg);
            }
        }

        return (fresh, last);
    }

    public static ulong Sequence(INatsJSMsg<byte[]> msg) => msg.Metadata?.Sequence.Stream ?? 0;

    public static ulong Delivery(INatsJSMsg<byte[]> msg) => msg.Metadata?.Sequence.Consumer ?? 0;

    /// <summary>
    /// Records a run until it is recorded. PostgreSQL down or failing: the events wait in JetStream,
    /// unacknowledged (progress acks keep them), and the run is retried as it was, so nothing is
    /// skipped or recorded twice. A NATS failure goes to the caller, which starts again from its
    /// checkpoint.
    /// </summary>
    public async Task RecordWithRetryAsync(IReadOnlyList<INatsJSMsg<byte[]>> run, Func<Task> record, string stream, OutageWatch watch, CancellationToken ct) =>
        await Retries.Forever(
                TimeSpan.FromMilliseconds(100),
                Retries.OutageMax,
                e => e is not NATS.Client.Core.NatsException && !RecorderFence.Refused(e),
                async failure =>
                {
                    // PostgreSQL away: logged once by the role's watch; any other failure each time.
                    if (!Outages.IsOutage(failure.Exception))
                    {
                        LogRecordFailed(logger, run.Count, stream, failure.Delay.TotalSeconds, failure.Exception.Message);
                    }
                    else
                    {
                        watch.Failed(failure.Exception);
                    }

                    foreach (var msg in run)
                    {
                        await msg.AckProgressAsync(cancellationToken: ct);
                    }
                })
            .ExecuteAsync(async _ => await record(), ct);

    [LoggerMessage(LogLevel.Warning, "Recording {Count} events of {Stream} failed; retrying in {Seconds}s: {Reason}")]
    private static partial void LogRecordFailed(ILogger logger, int count, string stream, double seconds, string reason);
}
