using CqrsInference.Commands;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Gating;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>One batch's run: an outcome per job, when it started and ended, and how long the model took.</summary>
internal sealed record BatchRun(IReadOnlyList<RunOutcome> Outcomes, DateTimeOffset StartedAt, DateTimeOffset FinishedAt, TimeSpan Elapsed);

/// <summary>
/// The third stage of a worker: runs a batch in one model call, off the caller's thread, and keeps
/// its jobs from being redelivered meanwhile (a progress ack every <paramref name="heartbeat"/>,
/// a third of the queue's ack wait). Counts the time spent in the model, for the busy fraction.
/// </summary>
internal sealed partial class BatchExecutor(IJobRunner runner, string model, TimeSpan heartbeat, TimeProvider clock, ILogger logger)
{
    private long _busyTicks;
    private long _firstStart;
    private long _lastEnd;

    /// <summary>Time spent inside model runs, summed over slots.</summary>
    public TimeSpan BusyTime => TimeSpan.FromTicks(Interlocked.Read(ref _busyTicks));

    /// <summary>From the first run's start to the last run's end (zero before any run).</summary>
    public TimeSpan ActiveTime => Interlocked.Read(ref _firstStart) == 0 ? TimeSpan.Zero : clock.GetElapsedTime(_firstStart, Interlocked.Read(ref _lastEnd));

    public string Device => runner.Device;

    public async Task<BatchRun> RunAsync(IReadOnlyList<AdmittedJob> jobs)
    {
        var startedAt = clock.GetUtcNow();
        var start = clock.GetTimestamp();
        Interlocked.CompareExchange(ref _firstStart, start, 0);
        IReadOnlyList<RunOutcome> outcomes;
        using (var beat = new CancellationTokenSource())
        {
            var beating = HeartbeatAsync(jobs, beat.Token);
            try
            {
                outcomes = await Task.Run(() => runner.Run(jobs, CancellationToken.None));
            }
            finally
            {
                await beat.CancelAsync();
                await beating;
            }
        }

        var end = clock.GetTimestamp();
        var elapsed = clock.GetElapsedTime(start, end);
        Interlocked.Add(ref _busyTicks, elapsed.Ticks);
        Interlocked.Exchange(ref _lastEnd, end);
        Telemetry.InferenceDuration.Record(elapsed.TotalSeconds, new("model", model), new("device", runner.Device));
        Telemetry.BatchSize.Record(jobs.Count, new KeyValuePair<string, object?>("model", model));
        return new BatchRun(outcomes, startedAt, clock.GetUtcNow(), elapsed);
    }

    private async Task HeartbeatAsync(IReadOnlyList<AdmittedJob> jobs, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                // Not thrown at the end of every run: the run's end cancels the wait, which is no error.
                await Task.Delay(heartbeat, clock, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (ct.IsCancellationRequested)
                {
                    return;
                }

                foreach (var job in jobs)
                {
                    await job.Delivery.Ack.ProgressAsync(ct);
                }

                LogHeartbeat(logger, model, jobs.Count);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(LogLevel.Debug, "Heartbeat for {Count} running {Model} jobs")]
    private static partial void LogHeartbeat(ILogger logger, string model, int count);
}
