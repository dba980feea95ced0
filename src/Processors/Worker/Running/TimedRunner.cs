using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Gating;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>
/// Runs a batch under its execution timeout, the smallest of its jobs' (a job's <c>timeout</c>, at
/// most its model's <c>timeoutMs</c>: <see cref="ModelDefinition.TimeoutFor"/>). A run still going
/// then is aborted (ONNX Runtime's <c>RunOptions.Terminate</c>, see <see cref="OrtRuns"/>), so its
/// slot is free for the next job. A lone job whose run was aborted is rejected with
/// <c>execution_timeout</c>: it fails at once, without retries (the same input would hang again).
/// A batch that was aborted cannot say which job was slow, so each of its jobs runs again alone
/// under its own timeout, as the runners rerun a batch one of whose jobs broke it: the slow job
/// fails and its batch-mates are not lost. A cancel of a running job (<see cref="RunCancels"/>)
/// aborts its run the same way: the job ends <see cref="RunOutcome.Cancelled"/> and its batch-mates
/// run again alone.
/// </summary>
internal sealed partial class TimedRunner(IJobRunner inner, ModelDefinition model, RunCancels cancels, TimeProvider clock, ILogger logger) : IJobRunner
{
    public string Device => inner.Device;

    /// <summary>The runner the timeouts apply to.</summary>
    public IJobRunner Inner => inner;

    public IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs, CancellationToken abort)
    {
        using var watch = cancels.Watch(jobs.Select(j => (j.Job.JobId, j.Job.SeriesNumber)));
        if (jobs.Count == 1)
        {
            return [RunAlone(jobs[0], watch, abort)];
        }

        var timeout = jobs.Min(TimeoutOf);
        try
        {
            return RunWithin(jobs, timeout, watch, abort);
        }
        catch (ExecutionTimeoutException) when (!abort.IsCancellationRequested)
        {
            // A cancel aborts a batch as a timeout does: the cancelled jobs end, the others run again alone.
            var cancelled = jobs.Count(j => watch.IsCancelled(j.Job.JobId));
            if (cancelled > 0)
            {
                LogBatchCancelled(logger, jobs.Count, model.Name, cancelled);
            }
            else
            {
                LogBatchTimedOut(logger, jobs.Count, model.Name, timeout.TotalMilliseconds);
            }

            return jobs.Select(job =>
            {
                var started = clock.GetTimestamp();
                var outcome = RunAlone(job, watch, abort);
                return outcome with { RanAlone = clock.GetElapsedTime(started), SetTheBound = cancelled == 0 && TimeoutOf(job) == timeout };
            }).ToList();
        }
    }

    private RunOutcome RunAlone(AdmittedJob job, RunWatch watch, CancellationToken abort)
    {
        if (watch.IsCancelled(job.Job.JobId))
        {
            return new RunOutcome.Cancelled();
        }

        var timeout = TimeoutOf(job);
        try
        {
            return RunWithin([job], timeout, watch, abort)[0];
        }
        catch (ExecutionTimeoutException) when (!abort.IsCancellationRequested && watch.IsCancelled(job.Job.JobId))
        {
            LogJobCancelled(logger, job.Job.JobId, model.Name);
            return new RunOutcome.Cancelled();
        }
        catch (ExecutionTimeoutException) when (!abort.IsCancellationRequested)
        {
            LogJobTimedOut(logger, job.Job.JobId, model.Name, timeout.TotalMilliseconds);
            return new RunOutcome.Rejected(JobErrorCodes.ExecutionTimeout,
                $"The run passed the execution timeout of {timeout.TotalMilliseconds:0} ms and was aborted.");
        }
    }

    private IReadOnlyList<RunOutcome> RunWithin(IReadOnlyList<AdmittedJob> jobs, TimeSpan timeout, RunWatch watch, CancellationToken abort)
    {
        using var timer = new CancellationTokenSource(timeout, clock);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(abort, timer.Token, watch.Begin(jobs.Select(j => j.Job.JobId)));
        return inner.Run(jobs, either.Token);
    }

    private TimeSpan TimeoutOf(AdmittedJob job) => model.TimeoutFor(job.Job.TimeoutMs);

    [LoggerMessage(LogLevel.Warning, "A batch of {Count} {Model} jobs passed its execution timeout of {TimeoutMs} ms and was aborted; each job runs again alone")]
    private static partial void LogBatchTimedOut(ILogger logger, int count, string model, double timeoutMs);

    [LoggerMessage(LogLevel.Information, "A batch of {Count} {Model} jobs was aborted: {Cancelled} of them cancelled; the others run again alone")]
    private static partial void LogBatchCancelled(ILogger logger, int count, string model, int cancelled);

    [LoggerMessage(LogLevel.Warning, "Job {JobId} ({Model}) passed its execution timeout of {TimeoutMs} ms: aborted, failed with execution_timeout")]
    private static partial void LogJobTimedOut(ILogger logger, Guid jobId, string model, double timeoutMs);

    [LoggerMessage(LogLevel.Information, "Job {JobId} ({Model}) was cancelled while it ran: its run aborted")]
    private static partial void LogJobCancelled(ILogger logger, Guid jobId, string model);
}
