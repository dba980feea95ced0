using System.Threading.Channels;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Gating;
using CqrsInference.Processors.Worker.Running;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Processors.Worker.Shadowing;

/// <summary>A succeeded job offered to the shadow: its command (inputs loaded), the version that ran it and that run's answer and time.</summary>
internal sealed record ShadowJob(JobCommand Job, string PrimaryVersion, IReadOnlyList<Tensor> PrimaryOutputs, double PrimaryRunMs, int PrimaryBatchSize);

/// <summary>
/// Runs a model's succeeded jobs again on its shadow version (<see cref="ModelCatalog.ShadowOf"/>)
/// and puts each comparison on the log (<see cref="V1.JobShadowResult"/>), on spare capacity only:
/// the worker offers each job after its ending is published and settled (<see cref="Offer"/> never
/// waits: when the bounded queue is full the job is dropped and counted), and one loop runs them,
/// what is queued as one batch (up to the shadow's <c>maxBatch</c>: one model run and one round of
/// publishes for many jobs, so a shadow costs the shared machine little per job), only while the
/// worker's primary work leaves room (<c>primaryIdle</c>: no delivery waiting for a slot, a slot
/// free) and the host's CPU has room (<see cref="SpareCpu"/>: its results are published, recorded
/// and rolled up on the same cores when the processor shares its host), and on a thread of its own
/// at the lowest CPU priority (<see cref="LowPriorityThread"/>; the shadow's session is loaded with
/// one intra-op thread, so the run keeps to it): a primary run that starts while a shadow batch
/// runs takes the cores first. Nothing here touches a job's delivery, status or billing: the job
/// has ended before its shadow runs. On stop, what is still queued is dropped.
/// </summary>
internal sealed partial class ShadowRunner(
    ModelDefinition shadow, IJobRunner runner, IReadOnlyDictionary<string, ModelDefinition> primaries, IEventLog log,
    WorkerIdentity identity, int capacity, TimeProvider clock, ILogger logger, SpareCpu? spareCpu = null)
{
    /// <summary>How often a shadow job waiting for spare capacity looks again.</summary>
    private static readonly TimeSpan IdlePoll = TimeSpan.FromMilliseconds(5);

    private readonly SpareCpu _cpu = spareCpu ?? SpareCpu.Unchecked;
    private readonly Channel<ShadowJob> _queue = Channel.CreateBounded<ShadowJob>(new BoundedChannelOptions(Math.Max(1, capacity)) { SingleReader = true });
    private long _dropped;
    private long _ran;

    public string Version => shadow.Version;

    /// <summary>Jobs not shadowed because the queue was full or the worker stopped.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Shadow results published.</summary>
    public long Ran => Interlocked.Read(ref _ran);

    /// <summary>Queues a succeeded job for the shadow, or drops it (counted) when the queue is full; never waits.</summary>
    public bool Offer(ShadowJob job)
    {
        if (_queue.Writer.TryWrite(job))
        {
            return true;
        }

        Drop(1);
        return false;
    }

    /// <summary>Runs queued jobs while <paramref name="primaryIdle"/> says the worker has room, until <paramref name="stoppingToken"/>.</summary>
    public async Task RunAsync(Func<bool> primaryIdle, CancellationToken stoppingToken)
    {
        var thread = new LowPriorityThread($"shadow {shadow.Name}");
        try
        {
            LogShadowThread(logger, shadow.Name, shadow.Version, await thread.LoweredAsync());
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                while (!primaryIdle() || !_cpu.HasRoom())
                {
                    await Task.Delay(IdlePoll, clock, stoppingToken);
                }

                var batch = new List<ShadowJob>(shadow.MaxBatch);
                while (batch.Count < shadow.MaxBatch && _queue.Reader.TryRead(out var job))
                {
                    batch.Add(job);
                }

                if (batch.Count > 0)
                {
                    await RunBatchAsync(thread, batch, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        thread.Dispose();
        _queue.Writer.TryComplete();
        var left = 0;
        while (_queue.Reader.TryRead(out _))
        {
            left++;
        }

        Drop(left);
    }

    private async Task RunBatchAsync(LowPriorityThread thread, List<ShadowJob> batch, CancellationToken ct)
    {
        try
        {
            var start = clock.GetTimestamp();
            var admitted = batch.Select(j => new AdmittedJob(ShadowDelivery.For(j.Job), j.Job with { ModelVersion = shadow.Version })).ToList();
            var outcomes = await thread.RunAsync(() => runner.Run(admitted, CancellationToken.None)).WaitAsync(ct);
            var elapsed = clock.GetElapsedTime(start);
            var results = batch.Select((job, i) => Result(job, outcomes[i], elapsed) with { ShadowBatchSize = batch.Count > 1 ? batch.Count : null }).ToList();
            await Task.WhenAll(batch.Select((job, i) => log.AppendAsync(JobRoute.Of(job.Job), results[i], trace: null, ct)));
            Interlocked.Add(ref _ran, batch.Count);
            foreach (var result in results)
            {
                Telemetry.ShadowRuns.Add(1, new("model", shadow.Name), new("outcome", result.Error is not null ? "failed" : OutputComparison.Identical(result.Agreement) ? "identical" : "different"));
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The shadow is never worth a primary's trouble: log and go on with the next.
            LogShadowFailed(logger, batch[0].Job.JobId, batch.Count, shadow.Name, shadow.Version, e.Message);
        }
    }

    /// <summary>The shadow's answer to a job, compared output by output with the primary's (the shadow's rules, else the primary version's).</summary>
    internal V1.JobShadowResult Result(ShadowJob job, RunOutcome outcome, TimeSpan elapsed)
    {
        var rules = shadow.Comparison ?? (primaries.TryGetValue(job.PrimaryVersion, out var primary) ? primary.Comparison : null);
        var (outputs, error) = outcome switch
        {
            RunOutcome.Succeeded s => (s.Outputs, (string?)null),
            RunOutcome.Rejected r => ([], $"{r.Code}: {r.Reason}"),
            RunOutcome.Faulted f => ([], $"{f.Code}: {f.Reason}"),
            _ => ((IReadOnlyList<Tensor>)[], "cancelled"),
        };
        return new V1.JobShadowResult(job.Job.JobId, shadow.Name, job.PrimaryVersion, shadow.Version, outputs,
            OutputComparison.Compare(job.PrimaryOutputs, outputs, rules), job.PrimaryRunMs, job.PrimaryBatchSize, elapsed.TotalMilliseconds,
            identity.Worker, identity.Device, clock.GetUtcNow(), error);
    }

    private void Drop(int count)
    {
        if (count > 0)
        {
            Interlocked.Add(ref _dropped, count);
            Telemetry.ShadowDropped.Add(count, new KeyValuePair<string, object?>("model", shadow.Name));
        }
    }

    [LoggerMessage(LogLevel.Information, "Shadow {Model} version {Version} runs on its own thread, at the lowest CPU priority: {Lowered}")]
    private static partial void LogShadowThread(ILogger logger, string model, string version, bool lowered);

    [LoggerMessage(LogLevel.Warning, "Shadow run of job {JobId} (a batch of {Jobs}) on {Model} version {Version} failed, not recorded: {Reason}")]
    private static partial void LogShadowFailed(ILogger logger, Guid jobId, int jobs, string model, string version, string reason);
}
