namespace CqrsInference.Commands.Jobs;

/// <summary>The error codes a failed job or attempt carries (<c>error.code</c> in the API).</summary>
public static class JobErrorCodes
{
    /// <summary>The inputs left in the object store are missing or changed: the job can never run.</summary>
    public const string InputCorrupt = "input_corrupt";

    /// <summary>The model's run threw: retried up to the delivery limit.</summary>
    public const string InferenceError = "inference_error";

    /// <summary>
    /// The model's output for this input holds NaN or ±Infinity, which no result can carry (JSON has
    /// no such numbers): the same input always does this, so the job fails at once, without retries.
    /// </summary>
    public const string NonFiniteOutput = "non_finite_output";

    /// <summary>
    /// The run passed the job's execution timeout (its <c>timeout</c>, else the model's
    /// <c>timeoutMs</c>) and was aborted: the job fails at once, without retries, and frees its slot.
    /// </summary>
    public const string ExecutionTimeout = "execution_timeout";

    /// <summary>A fault injected by a test (<c>Processor:FaultInjection</c>).</summary>
    public const string InjectedFault = "injected_fault";

    /// <summary>
    /// The job's model version is served by no processor that took it: handed back (an attempt
    /// failed) while the manifest lists the version as serving, so that a processor serving it takes
    /// it, and failed once the delivery limit is reached; failed at once when the version is absent
    /// from the manifest or retired.
    /// </summary>
    public const string ModelVersionNotServed = "model_version_not_served";

    /// <summary>The processor failed around the model (a claim, a blob, a publish), on every delivery.</summary>
    public const string ProcessorError = "processor_error";
}
