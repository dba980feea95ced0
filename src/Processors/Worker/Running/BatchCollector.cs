using System.Threading.Channels;
using CqrsInference.Processors.Worker.Fetching;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>
/// Gathers delivered jobs into batches for one executor: up to <paramref name="maxBatch"/> jobs,
/// waiting at most <paramref name="maxDelay"/> after the first for batch-mates (dynamic batching).
/// </summary>
internal sealed class BatchCollector(ChannelReader<JobDelivery> deliveries, int maxBatch, TimeSpan maxDelay, TimeProvider clock)
{
    /// <summary>The next batch, or null once the channel is closed and empty.</summary>
    public async Task<IReadOnlyList<JobDelivery>?> NextAsync(CancellationToken drain)
    {
        while (await deliveries.WaitToReadAsync(drain))
        {
            if (!deliveries.TryRead(out var first))
            {
                continue;
            }

            var batch = new List<JobDelivery>(maxBatch) { first };
            await FillAsync(batch, drain);
            return batch;
        }

        return null;
    }

    private async Task FillAsync(List<JobDelivery> batch, CancellationToken drain)
    {
        var deadline = clock.GetTimestamp() + (long)(maxDelay.TotalSeconds * clock.TimestampFrequency);
        while (batch.Count < maxBatch)
        {
            if (deliveries.TryRead(out var next))
            {
                batch.Add(next);
                continue;
            }

            var remaining = clock.GetElapsedTime(clock.GetTimestamp(), deadline);
            if (remaining <= TimeSpan.Zero || maxDelay == TimeSpan.Zero)
            {
                return;
            }

            // The batch delay runs on the worker's clock (a test's fake one too), not the system timer.
            using var delay = new CancellationTokenSource(remaining, clock);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(drain, delay.Token);
            try
            {
                if (!await deliveries.WaitToReadAsync(wait.Token))
                {
                    return;
                }
            }
            catch (OperationCanceledException) when (!drain.IsCancellationRequested)
            {
                return;
            }
        }
    }
}
