using Microsoft.ML.OnnxRuntime;

namespace CqrsInference.Processors.Runtime;

/// <summary>
/// Every ONNX Runtime run of a job runner goes through here, so each can be aborted: a run gets
/// its own <see cref="RunOptions"/>, whose <see cref="RunOptions.Terminate"/> is set when
/// <c>abort</c> fires (ONNX Runtime checks it between nodes and throws out of <c>Run</c>); that
/// throw becomes an <see cref="ExecutionTimeoutException"/>. A token that fired before the run
/// makes it throw at once.
/// </summary>
internal static class OrtRuns
{
    public static IDisposableReadOnlyCollection<OrtValue> Run(
        InferenceSession session, IReadOnlyDictionary<string, OrtValue> inputs, IReadOnlyCollection<string> outputs, CancellationToken abort)
    {
        using var options = new RunOptions();

        // Disposed before the options (declared after them): its disposal waits for a callback
        // in progress, so Terminate is never set on disposed options.
        using var terminate = abort.Register(static state => ((RunOptions)state!).Terminate = true, options);
        try
        {
            return session.Run(options, inputs, outputs);
        }
        catch (OnnxRuntimeException e) when (abort.IsCancellationRequested)
        {
            throw new ExecutionTimeoutException(e);
        }
    }
}

/// <summary>A run was aborted because it passed its execution timeout (see <see cref="OrtRuns"/>).</summary>
internal sealed class ExecutionTimeoutException(Exception? inner = null)
    : Exception("The run was aborted: it passed its execution timeout.", inner);
