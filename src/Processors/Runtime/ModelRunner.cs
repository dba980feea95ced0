using CqrsInference.Commands.Jobs;

namespace CqrsInference.Processors.Runtime;

/// <summary>What one job's run came to.</summary>
internal abstract record RunOutcome
{
    /// <summary>
    /// How long the job's own run took when its batch's run broke (an input that broke it, a
    /// timeout, a cancel) and it ran again alone; null when it ran in its batch's one run.
    /// </summary>
    public TimeSpan? RanAlone { get; init; }

    /// <summary>The job never reached the model: its input was refused while it was prepared.</summary>
    public bool NotRun { get; init; }

    /// <summary>
    /// The job's timeout was its batch's (the smallest of the batch) when the batch's run passed it
    /// and was aborted: the job asked for the bound the batch broke.
    /// </summary>
    public bool SetTheBound { get; init; }

    /// <summary>The model ran; outputs over the claim-check threshold are in the object store (<paramref name="OutputsRef"/>).</summary>
    public sealed record Succeeded(IReadOnlyList<Tensor> Outputs, BlobRef? OutputsRef = null) : RunOutcome;

    /// <summary>
    /// The job can never succeed (undecodable input, wrong for the model, or its run passed its
    /// execution timeout): fail at once, without retries.
    /// </summary>
    public sealed record Rejected(string Code, string Reason) : RunOutcome;

    /// <summary>The run failed in a way that may pass: retry, up to the delivery limit.</summary>
    public sealed record Faulted(string Code, string Reason) : RunOutcome;

    /// <summary>
    /// The job was cancelled while it ran and its run aborted (<see cref="Worker.Running.RunCancels"/>):
    /// its cancel is already its ending on the log.
    /// </summary>
    public sealed record Cancelled : RunOutcome;
}

/// <summary>Runs jobs through a model. Implementations may batch several jobs in one ONNX call.</summary>
internal interface IModelRunner : IDisposable
{
    /// <summary>The device the model actually runs on (<c>cpu</c>, <c>cuda</c>).</summary>
    string Device { get; }

    /// <summary>
    /// Runs the jobs; returns one outcome per job, in order. When <paramref name="abort"/> fires the
    /// model's run is aborted and this throws <see cref="ExecutionTimeoutException"/>.
    /// </summary>
    IReadOnlyList<RunOutcome> Run(IReadOnlyList<JobCommand> jobs, CancellationToken abort);

    /// <summary>Runs once on made-up input so the first real job does not pay for initialization.</summary>
    void WarmUp();
}

/// <summary>
/// The batching skeleton every runner shares: prepare each job's input (a bad input rejects only
/// that job), run the prepared ones in one call, and if that call throws, run them one by one so a
/// poison job cannot fail its batch-mates. Alone, a job whose output cannot be a result
/// (<see cref="NonFiniteOutputException"/>) is rejected; any other exception is a fault, retried.
/// An aborted run (<see cref="ExecutionTimeoutException"/>) is not retried here, where the abort
/// would only stop the next run too: it leaves <see cref="Run"/> for the caller's timeout rule.
/// </summary>
internal abstract class BatchingRunner<TPrepared> : IModelRunner
{
    public abstract string Device { get; }

    public IReadOnlyList<RunOutcome> Run(IReadOnlyList<JobCommand> jobs, CancellationToken abort)
    {
        var outcomes = new RunOutcome?[jobs.Count];
        var prepared = new List<(int Index, TPrepared Input)>(jobs.Count);
        for (var i = 0; i < jobs.Count; i++)
        {
            try
            {
                prepared.Add((i, Prepare(jobs[i])));
            }
            catch (InvalidInputException e)
            {
                outcomes[i] = new RunOutcome.Rejected(e.Code, e.Message) { NotRun = true };
            }
        }

        if (prepared.Count > 0)
        {
            try
            {
                var results = RunBatch(prepared.Select(p => p.Input).ToList(), abort);
                for (var k = 0; k < prepared.Count; k++)
                {
                    outcomes[prepared[k].Index] = new RunOutcome.Succeeded(results[k]);
                }
            }
            catch (InvalidInputException e) when (prepared.Count == 1)
            {
                outcomes[prepared[0].Index] = new RunOutcome.Rejected(e.Code, e.Message);
            }
            catch (Exception e) when (prepared.Count > 1 && e is not ExecutionTimeoutException)
            {
                foreach (var (index, input) in prepared)
                {
                    var started = System.Diagnostics.Stopwatch.GetTimestamp();
                    outcomes[index] = RunOne(input, abort) with { RanAlone = System.Diagnostics.Stopwatch.GetElapsedTime(started) };
                }
            }
            catch (Exception e) when (e is not ExecutionTimeoutException)
            {
                outcomes[prepared[0].Index] = new RunOutcome.Faulted(JobErrorCodes.InferenceError, e.Message);
            }
        }

        return outcomes.Select(o => o!).ToList();
    }

    public abstract void WarmUp();

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>Turns a job's tensors into model input; throws <see cref="InvalidInputException"/> if it never can.</summary>
    protected abstract TPrepared Prepare(JobCommand job);

    /// <summary>
    /// One ONNX call for all the inputs (through <see cref="OrtRuns"/>, aborted when
    /// <paramref name="abort"/> fires); returns each input's outputs, in order.
    /// </summary>
    protected abstract IReadOnlyList<IReadOnlyList<Tensor>> RunBatch(IReadOnlyList<TPrepared> inputs, CancellationToken abort);

    private RunOutcome RunOne(TPrepared input, CancellationToken abort)
    {
        try
        {
            return new RunOutcome.Succeeded(RunBatch([input], abort)[0]);
        }
        catch (InvalidInputException e)
        {
            return new RunOutcome.Rejected(e.Code, e.Message);
        }
        catch (Exception e) when (e is not ExecutionTimeoutException)
        {
            return new RunOutcome.Faulted(JobErrorCodes.InferenceError, e.Message);
        }
    }
}

/// <summary>
/// An input that can never run, whatever the retry: thrown while preparing a job, or while turning
/// the model's output into the job's result (<see cref="NonFiniteOutputException"/>).
/// </summary>
internal class InvalidInputException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}

/// <summary>
/// The model's output for a job holds NaN or ±Infinity (an overflow inside the model, say): the
/// same input always gives the same output, so the job is rejected, not retried.
/// </summary>
internal sealed class NonFiniteOutputException(string output, int count)
    : InvalidInputException(JobErrorCodes.NonFiniteOutput, $"Output '{output}' holds {count} non-finite {(count == 1 ? "value" : "values")} (NaN or ±Infinity): the model's numbers overflowed on this input.");
