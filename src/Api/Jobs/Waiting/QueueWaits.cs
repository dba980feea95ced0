using System.Collections.Concurrent;
using CqrsInference.Messaging;
using CqrsInference.Projections.Analytics;
using Marten;
using NATS.Client.JetStream;

namespace CqrsInference.Api.Jobs.Waiting;

/// <summary>
/// Reads what <see cref="JobWaiting"/> needs, cheaply: one consumer info and two message gets per
/// queue (its oldest and its newest job), one get per job (its own sequence), and one query of the
/// processors read model (a row per processor), each but the job's kept for
/// <see cref="Fresh"/> so that many callers polling queued jobs cost the servers nothing more.
/// The queue's rate comes from its consumer's delivered count, sampled at each read (up to a
/// minute back); before a second read, from the count since the consumer was made.
/// </summary>
internal sealed class QueueWaits(INatsJSContext js, JobQueues queues, TimeProvider clock)
{
    public static readonly TimeSpan Fresh = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan RateWindow = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<string, QueueEntry> _queues = new();
    private (DateTimeOffset At, IReadOnlyList<ProcessorStatus> Online)? _processors;

    public async Task<JobWaiting> OfAsync(JobQueue queue, Guid jobId, DateTimeOffset submittedAt, IQuerySession session, CancellationToken ct)
    {
        var snapshot = await QueueAsync(queue, ct);
        var sequence = await queues.SequenceOfAsync(queue, jobId, ct);
        var online = await OnlineAsync(session, ct);
        return WaitingEstimate.Of(snapshot, online, queue.Region, queue.Model, submittedAt, clock.GetUtcNow(), sequence);
    }

    private async Task<IReadOnlyList<ProcessorStatus>> OnlineAsync(IQuerySession session, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        if (_processors is { } cached && now - cached.At <= Fresh)
        {
            return cached.Online;
        }

        // Two callers at once may both read it: a row per processor, harmless.
        var online = (await session.Query<ProcessorStatus>().Where(p => p.Online).ToListAsync(ct)).ToList();
        _processors = (now, online);
        return online;
    }

    private async Task<QueueSnapshot> QueueAsync(JobQueue queue, CancellationToken ct)
    {
        var entry = _queues.GetOrAdd(queue.ConsumerName, _ => new QueueEntry());
        var now = clock.GetUtcNow();
        Task<QueueSnapshot> reading;
        lock (entry)
        {
            if (entry.Reading is null || now - entry.ReadAt > Fresh || entry.Reading.IsFaulted || entry.Reading.IsCanceled)
            {
                (entry.ReadAt, entry.Reading) = (now, ReadAsync(queue, entry, now, ct));
            }

            reading = entry.Reading;
        }

        return await reading;
    }

    private async Task<QueueSnapshot> ReadAsync(JobQueue queue, QueueEntry entry, DateTimeOffset now, CancellationToken ct)
    {
        INatsJSConsumer consumer;
        try
        {
            consumer = await js.GetConsumerAsync(NatsTopology.JobsStream, queue.ConsumerName, ct);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return new QueueSnapshot(0, 0, null, null);
        }

        var info = consumer.Info;
        var delivered = (long)info.Delivered.ConsumerSeq;
        double? rate;
        lock (entry)
        {
            entry.Samples.RemoveAll(s => now - s.At > RateWindow);
            var first = entry.Samples.FirstOrDefault();
            var since = entry.Samples.Count > 0 && now - first.At >= TimeSpan.FromSeconds(1) ? first : (At: info.Created, Delivered: 0L);
            var seconds = (now - since.At).TotalSeconds;
            rate = seconds > 0 ? Math.Max(0, delivered - since.Delivered) / seconds : null;
            entry.Samples.Add((now, delivered));
        }

        return new QueueSnapshot(
            (long)info.NumPending, info.NumAckPending, await queues.OldestAsync(queue, ct), rate, info.Delivered.StreamSeq, await queues.LastSequenceAsync(queue, ct));
    }

    private sealed class QueueEntry
    {
        public DateTimeOffset ReadAt { get; set; }

        public Task<QueueSnapshot>? Reading { get; set; }

        public List<(DateTimeOffset At, long Delivered)> Samples { get; } = [];
    }
}
