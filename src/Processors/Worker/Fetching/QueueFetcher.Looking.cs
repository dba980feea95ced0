using CqrsInference.Messaging;

namespace CqrsInference.Processors.Worker.Fetching;

/// <summary>How the fetcher knows the queues: listings, the woken queues read alone, and the closer look of an idle scan.</summary>
internal sealed partial class QueueFetcher
{
    private enum Look
    {
        Fresh,
        Refreshed,
        Failed,
        Stopping,
    }

    /// <summary>
    /// Reads the queues' counts again when what was read is stale (every queue of the model, listed),
    /// or when woken (only the queues the wake-ups named, while the last listing is fresh: a listing
    /// per wake-up was 200 CONSUMER.LIST requests a second at 400 queued jobs/s, each of every
    /// tenant's queues).
    /// </summary>
    private async Task<Look> LookAsync(CancellationToken ct)
    {
        // A wake-up that came within WokenAfter of the last reading is kept for the next look, not
        // dropped: that reading may have been taken before its job was queued.
        var listed = Age(_listedAt) <= _listedFreshFor;
        if (listed && !(Volatile.Read(ref _woken) == 1 && Age(_knownAt) > WokenAfter))
        {
            return Look.Fresh;
        }

        Interlocked.Exchange(ref _woken, 0);

        try
        {
            var woken = _wokenQueues.Keys.ToList();
            if (listed && woken.Count is > 0 and <= ReadWokenAtMost)
            {
                _known = await ReadAsync(woken, ct);
                _knownAt = clock.GetTimestamp();
                _watch.Worked();
                return Look.Refreshed;
            }

            var listing = clock.GetTimestamp();
            _known = await source.ListAsync(model, ct);
            _knownAt = _listedAt = clock.GetTimestamp();
            _listedFreshFor = TimeSpan.FromTicks(Math.Max(FreshFor.Ticks, FreshForListings * clock.GetElapsedTime(listing, _listedAt).Ticks));
            _watch.Worked();
            if (clock.GetElapsedTime(_lastLook) >= options.Scheduling.IdleScan)
            {
                _known = await LookCloserAsync(_known, ct);
                _lastLook = clock.GetTimestamp();
            }

            return Look.Refreshed;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return Look.Stopping;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Failed(e, e.Message);
            return Look.Failed;
        }
    }

    private TimeSpan Age(long at) => at == long.MinValue ? TimeSpan.MaxValue : clock.GetElapsedTime(at);

    /// <summary>What was listed, with the counts of <paramref name="queues"/> read again (one consumer info each).</summary>
    private async Task<IReadOnlyList<QueueState>> ReadAsync(IReadOnlyList<JobQueue> queues, CancellationToken ct)
    {
        var known = _known.ToDictionary(q => q.Queue);
        foreach (var queue in queues)
        {
            if (await source.StateAsync(queue, ct) is { } state)
            {
                known[queue] = state with { OldestAt = known.GetValueOrDefault(queue)?.OldestAt };
            }
        }

        return [.. known.Values];
    }

    /// <summary>
    /// What the consumers' counts do not show, looked at every <see cref="SchedulingOptions.IdleScan"/>:
    /// a queue with jobs in flight and none waiting may hold a retry that came due or the job of a
    /// processor that died (JetStream redelivers those only to a pull), so it is worth one pull;
    /// and how long other regions' short queues have waited (overflow by age).
    /// </summary>
    private async Task<IReadOnlyList<QueueState>> LookCloserAsync(IReadOnlyList<QueueState> states, CancellationToken ct)
    {
        var waitingByRegion = states.GroupBy(q => q.Queue.Region).ToDictionary(g => g.Key, g => g.Sum(q => q.Waiting));
        var result = new List<QueueState>(states.Count);
        foreach (var state in states)
        {
            var closer = state.Waiting == 0 && state.InFlight > 0 ? state with { Waiting = 1 } : state;
            if (closer.Queue.Region != options.Region && closer.Waiting > 0 && options.Scheduling.Overflow
                && waitingByRegion[closer.Queue.Region] < options.Scheduling.OverflowThreshold)
            {
                closer = closer with { OldestAt = await source.OldestAsync(closer.Queue, ct) };
            }

            result.Add(closer);
        }

        return result;
    }
}
