using CqrsInference.Projections.Analytics;

namespace CqrsInference.Api.Jobs.Waiting;

/// <summary>
/// Why a queued job waits, as <c>GET /v1/jobs/{id}</c> tells it: its place in its queue (an
/// estimate), the queue's size and recent rate, whether any online processor serves its model (in
/// its region, or elsewhere: overflow), and when it may start.
/// </summary>
/// <param name="Position">Jobs waiting in its queue up to and including it: 1 is next; 0 when a processor holds it (pulled, or waiting for its retry).</param>
/// <param name="PositionEstimated">Always true: the position assumes the queue's waiting jobs are spread evenly among the stream's sequences (or, when the job's sequence is not known, its arrivals in time).</param>
/// <param name="Queued">Jobs in its queue not yet handed to a processor.</param>
/// <param name="InFlight">Jobs of its queue a processor holds (running, or waiting for a retry).</param>
/// <param name="ProcessorsInRegion">Online processors of its region that serve its model.</param>
/// <param name="ProcessorsElsewhere">Online processors of other regions that serve its model (they take it by overflow).</param>
/// <param name="Served">Whether any online processor serves its model; false: it waits until one comes.</param>
/// <param name="RatePerSecond">Jobs the queue handed to processors per second lately (over up to a minute; since the queue was made, before a second look); null when unknown.</param>
/// <param name="EstimatedStartAt">When it may start at that rate; null when nothing serves it or the rate is zero.</param>
internal sealed record JobWaiting(
    long Position,
    bool PositionEstimated,
    long Queued,
    long InFlight,
    int ProcessorsInRegion,
    int ProcessorsElsewhere,
    bool Served,
    double? RatePerSecond,
    DateTimeOffset? EstimatedStartAt);

/// <summary>
/// A queue as the API last read it: its consumer's counts, its oldest job, its rate, and where its
/// waiting jobs lie in the work queue's stream: after <paramref name="DeliveredSequence"/> (the
/// last one handed to a processor), up to <paramref name="LastSequence"/> (its newest job).
/// </summary>
internal sealed record QueueSnapshot(long Queued, long InFlight, DateTimeOffset? OldestAt, double? RatePerSecond, ulong? DeliveredSequence = null, ulong? LastSequence = null);

/// <summary>The estimate itself, without I/O.</summary>
internal static class WaitingEstimate
{
    /// <param name="sequence">The job's sequence in the work queue's stream, when known.</param>
    public static JobWaiting Of(
        QueueSnapshot queue, IReadOnlyList<ProcessorStatus> online, string region, string model, DateTimeOffset submittedAt, DateTimeOffset now, ulong? sequence = null)
    {
        var inRegion = online.Count(p => p.Region == region && Serves(p, model));
        var elsewhere = online.Count(p => p.Region != region && Serves(p, model));
        var position = sequence is { } at && queue is { DeliveredSequence: { } delivered, LastSequence: { } last }
            ? PositionOf(queue.Queued, at, delivered, last)
            : PositionOf(queue, submittedAt, now);
        var served = inRegion + elsewhere > 0;
        DateTimeOffset? startAt = served && queue.RatePerSecond is > 0 and var rate
            ? now + TimeSpan.FromSeconds(Math.Max(0, position - 1) / rate)
            : null;
        return new JobWaiting(position, true, queue.Queued, queue.InFlight, inRegion, elsewhere, served, queue.RatePerSecond, startAt);
    }

    /// <summary>A processor whose models are unknown (seen online before they were recorded) counts as serving every model.</summary>
    private static bool Serves(ProcessorStatus processor, string model) => processor.Models is null || processor.Models.Contains(model);

    /// <summary>
    /// By the job's place among the queue's waiting jobs in the stream (the sequences after the last
    /// delivered one up to the newest): exact for jobs that arrived together (a bulk or a batch,
    /// whose sequences follow each other), an estimate where other queues' jobs came between. At or
    /// before the delivered sequence, a processor holds it: 0.
    /// </summary>
    private static long PositionOf(long queued, ulong sequence, ulong delivered, ulong last)
    {
        if (queued == 0 || sequence <= delivered)
        {
            return 0;
        }

        if (last <= delivered || sequence >= last)
        {
            return queued;
        }

        var share = (double)(sequence - delivered) / (last - delivered);
        return Math.Clamp((long)Math.Ceiling(queued * share), 1, queued);
    }

    /// <summary>By arrivals in time, between the oldest waiting job and now (the job's sequence is not known).</summary>
    private static long PositionOf(QueueSnapshot queue, DateTimeOffset submittedAt, DateTimeOffset now)
    {
        if (queue.Queued == 0)
        {
            return 0;
        }

        if (queue.OldestAt is not { } oldest || now <= oldest)
        {
            return queue.Queued;
        }

        var share = Math.Clamp((submittedAt - oldest) / (now - oldest), 0, 1);
        return Math.Clamp((long)Math.Ceiling(queue.Queued * share), 1, queue.Queued);
    }
}
