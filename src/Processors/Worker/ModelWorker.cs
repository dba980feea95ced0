using System.Threading.Channels;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Fetching;
using CqrsInference.Processors.Worker.Gating;
using CqrsInference.Processors.Worker.Publishing;
using CqrsInference.Processors.Worker.Running;
using CqrsInference.Processors.Worker.Shadowing;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Processors.Worker;

/// <summary>The stages one worker is built from (see <see cref="ModelWorker"/>); <paramref name="Shadow"/> when the model has a shadow version served here.</summary>
internal sealed record WorkerStages(QueueFetcher Fetcher, WorkerCapacity Capacity, JobGate Gate, VersionExecutors Executors, OutcomePublisher Publisher, ShadowRunner? Shadow = null);

/// <summary>
/// A worker's settings: its home region, slots (batches run at once), jobs per batch, how long a
/// drain may take on shutdown, how soon a batch that failed outside the model is retried, and after
/// how long a run is reported running (a shorter one carries its start on its ending).
/// </summary>
internal sealed record WorkerSettings(string Region, int Slots, int MaxBatch, TimeSpan DrainTimeout, TimeSpan RetryDelay, TimeSpan ReportRunningAfter);

/// <summary>
/// Serves one model, as a pipeline of stages: the <see cref="QueueFetcher"/> pulls jobs for free
/// capacity into a channel; each of the model's slots takes batches from it
/// (<see cref="BatchCollector"/>), passes them through the <see cref="JobGate"/> (claim check, cancel
/// claim, deadline), splits it by model version (<see cref="VersionExecutors"/>), runs what may run
/// with each version's <see cref="BatchExecutor"/>, one version after the other, and hands the outcomes
/// to the <see cref="OutcomePublisher"/>, which stores the events and only then settles the
/// deliveries. When the model has a shadow version, each succeeded job is then offered to the
/// <see cref="ShadowRunner"/>, which runs it only while no delivery waits for a slot and a slot is
/// free. On shutdown it pulls no more, drains what it holds until the drain timeout, and
/// hands the rest back.
/// </summary>
internal sealed partial class ModelWorker(ModelDefinition model, WorkerStages stages, WorkerSettings settings, TimeProvider clock, ILogger logger)
{
    private readonly Channel<JobDelivery> _deliveries = Channel.CreateUnbounded<JobDelivery>();
    private long _completed;
    private int _running;

    /// <summary>The model this worker serves.</summary>
    public string Model => model.Name;

    /// <summary>Jobs this worker may hold at once: every slot running a full batch.</summary>
    public int Capacity => stages.Capacity.Capacity;

    /// <summary>Time spent inside model runs, summed over slots, for the busy fraction.</summary>
    public TimeSpan BusyTime => stages.Executors.BusyTime;

    public long Completed => Interlocked.Read(ref _completed);

    public int SlotCount => settings.Slots;

    public string Device => stages.Executors.Device;

    /// <summary>The shadow version's runner, when the model has one served here.</summary>
    public ShadowRunner? Shadow => stages.Shadow;

    /// <summary>Whether primary work leaves room for a shadow run: no delivery waiting for a slot, and a slot free.</summary>
    private bool PrimaryIdle() => _deliveries.Reader.Count == 0 && Volatile.Read(ref _running) < settings.Slots;

    /// <summary>The versions of the model this worker serves.</summary>
    public IReadOnlyList<string> Versions => [.. stages.Executors.All.Select(v => v.Model.Version)];

    /// <summary>
    /// Takes a job of the interactive path into the slots' batches, next to the queued ones, if
    /// there is a free place; false when there is none (or the worker is stopping).
    /// </summary>
    public bool TryTakeInteractive(JobDelivery delivery)
    {
        var remote = delivery.IsRemote(settings.Region);
        if (!stages.Capacity.TryTake(remote))
        {
            return false;
        }

        if (_deliveries.Writer.TryWrite(delivery))
        {
            return true;
        }

        stages.Capacity.Settled(1, remote ? 1 : 0);
        return false;
    }

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        using var drain = new CancellationTokenSource();
        var delay = TimeSpan.FromMilliseconds(model.Batching?.MaxBatchDelayMs ?? 0);
        var executors = Enumerable.Range(0, settings.Slots)
            .Select(_ => ExecuteLoopAsync(new BatchCollector(_deliveries.Reader, settings.MaxBatch, delay, clock, () => stages.Capacity.JobsComing), drain.Token))
            .ToList();
        var shadowing = stages.Shadow?.RunAsync(PrimaryIdle, stoppingToken) ?? Task.CompletedTask;
        await stages.Fetcher.RunAsync(_deliveries.Writer, stoppingToken);

        // Stopping: no new pulls. What pulls still delivered, and what is queued here, runs until
        // the drain deadline; the rest is handed back for another processor.
        _deliveries.Writer.TryComplete();
        drain.CancelAfter(settings.DrainTimeout);
        await Task.WhenAll(executors);
        while (_deliveries.Reader.TryRead(out var left))
        {
            await left.Ack.RetryAsync(TimeSpan.Zero);
        }

        await shadowing;

        var active = stages.Executors.ActiveTime;
        LogStopped(logger, model.Name, Completed, BusyTime.TotalSeconds, active.TotalSeconds,
            active > TimeSpan.Zero ? 100 * BusyTime / (active * settings.Slots) : 0, settings.Slots);
    }

    private async Task ExecuteLoopAsync(BatchCollector collector, CancellationToken drain)
    {
        try
        {
            while (await collector.NextAsync(drain) is { } batch)
            {
                Interlocked.Increment(ref _running);
                try
                {
                    await ProcessBatchAsync(batch);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // NATS unreachable, a claim or publish that failed: nothing unsettled was acked,
                    // so hand the batch back for a later attempt instead of losing this executor
                    // (a job on its last delivery is dead-lettered instead).
                    LogBatchFailed(logger, model.Name, batch.Count, e);
                    await stages.Publisher.HandBackAsync(batch, e, clock.GetUtcNow(), settings.RetryDelay);
                }
                finally
                {
                    Interlocked.Decrement(ref _running);
                    stages.Capacity.Settled(batch.Count, batch.Count(d => d.IsRemote(settings.Region)));
                }
            }
        }
        catch (OperationCanceledException) when (drain.IsCancellationRequested)
        {
        }
    }

    private async Task ProcessBatchAsync(IReadOnlyList<JobDelivery> batch)
    {
        // Interactive jobs' submissions are recorded while the gate claims: before any event of theirs.
        var recording = stages.Publisher.RecordServedAsync(batch);
        var gate = await stages.Gate.PassAsync(batch, CancellationToken.None);
        await recording;
        await stages.Publisher.SettleAsync(gate.Ended, traces: null);
        if (gate.Runnable.Count == 0)
        {
            return;
        }

        var split = stages.Executors.Split(gate.Runnable);
        await stages.Publisher.SettleAsync(stages.Publisher.EndingsOfNotServed(split.NotServed, clock.GetUtcNow()), traces: null);
        foreach (var run in split.Runs)
        {
            await RunVersionAsync(run);
        }
    }

    /// <summary>One version's jobs of the batch: run them, then publish and settle their endings.</summary>
    private async Task RunVersionAsync(VersionRun version)
    {
        using var traces = new JobTraces(version.Jobs);
        var startedAt = clock.GetUtcNow();
        stages.Publisher.CountStarts(version.Jobs);
        var (run, announced) = await RunAsync(version.Executor, version.Jobs, traces, startedAt);
        await stages.Publisher.SettleAsync(await stages.Publisher.EndingsOfAsync(version.Jobs, run, announced ? null : startedAt), traces);
        Interlocked.Add(ref _completed, version.Jobs.Count);
        OfferToShadow(version.Jobs, run);
    }

    /// <summary>Each succeeded job of a run, once its ending is settled, to the shadow (never waits: a full queue drops it).</summary>
    private void OfferToShadow(IReadOnlyList<AdmittedJob> jobs, BatchRun run)
    {
        if (stages.Shadow is not { } shadow)
        {
            return;
        }

        var shares = Publishing.RunShares.Of(run.Outcomes, run.Elapsed);
        for (var i = 0; i < jobs.Count; i++)
        {
            if (run.Outcomes[i] is RunOutcome.Succeeded succeeded)
            {
                shadow.Offer(new ShadowJob(jobs[i].Job, jobs[i].Job.ModelVersion, succeeded.Outputs, shares[i]?.Ms ?? 0, shares[i]?.BatchSize ?? 1));
            }
        }
    }

    /// <summary>
    /// Runs a batch. Only a run that outlasts <see cref="WorkerSettings.ReportRunningAfter"/> publishes
    /// its jobs' starts (callers see them running); a shorter one carries each start on its ending,
    /// which saves a publish, an acknowledgement and a recorded event per job.
    /// </summary>
    private async Task<(BatchRun Run, bool Announced)> RunAsync(BatchExecutor executor, IReadOnlyList<AdmittedJob> jobs, JobTraces traces, DateTimeOffset startedAt)
    {
        var running = executor.RunAsync(jobs);
        if (settings.ReportRunningAfter > TimeSpan.Zero)
        {
            using var cancel = new CancellationTokenSource();
            var later = Task.Delay(settings.ReportRunningAfter, clock, cancel.Token);
            if (await Task.WhenAny(running, later) == running)
            {
                await cancel.CancelAsync();
                return (await running, false);
            }
        }

        await stages.Publisher.AnnounceStartedAsync(jobs, traces, startedAt);
        return (await running, true);
    }

    [LoggerMessage(LogLevel.Error, "A batch of {Count} {Model} jobs failed outside the model and goes back to the queue")]
    private static partial void LogBatchFailed(ILogger logger, string model, int count, Exception exception);

    [LoggerMessage(LogLevel.Information, "Worker for {Model} stopped after {Completed} jobs: busy {BusySeconds:F3} s in inference of {ActiveSeconds:F3} s from first start to last finish ({BusyPercent:F1}% of {Slots} slots)")]
    private static partial void LogStopped(ILogger logger, string model, long completed, double busySeconds, double activeSeconds, double busyPercent, int slots);
}
