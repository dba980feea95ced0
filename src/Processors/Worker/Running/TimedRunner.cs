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
/// fails and its batch-mates are not lost.
/// </summary>
internal sealed partial class TimedRunner(IJobRunner inner, ModelDefinition model, TimeProvider clock, ILogger logger) : IJobRunner
{
    public string Device => inner.Device;

    /// <summary>The runner the timeouts apply to.</summary>
    public IJobRunner Inner => inner;

    public IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs, CancellationToken abort)
    {
        if (jobs.Count == 1)
        {
            return [RunAlone(jobs[0], abort)];
        }

        var timeout = jobs.Min(TimeoutOf);
        try
        {
            return RunWithin(jobs, timeout, abort);
        }
        catch (ExecutionTimeoutException) when (!abort.IsCancellationRequested)
        {
            LogBatchTimedOut(logger, jobs.Count, model.Name, timeout.TotalMilliseconds);
            return jobs.Select(job => RunAlone(job, abort)).ToList();
        }
    }

    private RunOutcome RunAlone(AdmittedJob job, CancellationToken abort)
    {
        var timeout = TimeoutOf(job);
        try
        {
            return RunWithin([job], timeout, abort)[0];
        }
        catch (ExecutionTimeoutException) when (!abort.IsCancellationRequested)
        {
            LogJobTimedOut(logger, job.Job.JobId, model.Name, timeout.TotalMilliseconds);
            return new RunOutcome.Rejected(JobErrorCodes.ExecutionTimeout,
                $"The run passed the execution timeout of {timeout.TotalMilliseconds:0} ms and was aborted.");
        }
    }

    private IReadOnlyList<RunOutcome> RunWithin(IReadOnlyList<AdmittedJob> jobs, TimeSpan timeout, CancellationToken abort)
    {
        using var timer = new CancellationTokenSource(timeout, clock);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(abort, timer.Token);
        return inner.Run(jobs, either.Token);
    }

    private TimeSpan TimeoutOf(AdmittedJob job) => model.TimeoutFor(job.Job.TimeoutMs);

    [LoggerMessage(LogLevel.Warning, "A batch of {Count} {Model} jobs passed its execution timeout of {TimeoutMs} ms and was aborted; each job runs again alone")]
    private static partial void LogBatchTimedOut(ILogger logger, int count, string model, double timeoutMs);

    [LoggerMessage(LogLevel.Warning, "Job {JobId} ({Model}) passed its execution timeout of {TimeoutMs} ms: aborted, failed with execution_timeout")]
    private static partial void LogJobTimedOut(ILogger logger, Guid jobId, string model, double timeoutMs);
}
