using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace CqrsInference.Processors.Runtime;

/// <summary>ONNX Runtime session settings, bound from <c>Processor:Runtime</c>.</summary>
internal sealed class RuntimeOptions
{
    /// <summary>
    /// <c>auto</c> (CUDA when its provider and libraries load, else CPU, the reason logged), <c>cuda</c>
    /// (a processor that cannot use CUDA does not start) or <c>cpu</c>.
    /// </summary>
    public string ExecutionProvider { get; set; } = "auto";

    /// <summary>The CUDA device the sessions run on.</summary>
    public int CudaDeviceId { get; set; }

    /// <summary>
    /// Threads one run of a model may use. 0 (the default) is <c>auto</c>: the machine's cores shared
    /// among the model's slots (<see cref="ThreadsPerRun"/>), so that a model with one slot uses every
    /// core for its batch and a model with as many slots as cores runs one thread per slot.
    /// </summary>
    [Range(0, 1024)]
    public int IntraOpThreads { get; set; }

    [Range(0, 1024)]
    public int InterOpThreads { get; set; } = 1;

    /// <summary><c>disabled</c>, <c>basic</c>, <c>extended</c> or <c>all</c>.</summary>
    public string GraphOptimization { get; set; } = "all";

    /// <summary>The intra-op threads of a model run with <paramref name="slots"/> runs at once on <paramref name="cores"/> cores.</summary>
    public int ThreadsPerRun(int slots, int cores) => IntraOpThreads > 0 ? IntraOpThreads : Math.Max(1, cores / Math.Max(1, slots));
}

/// <summary>Creates inference sessions on the configured execution provider and says which device it got.</summary>
internal sealed partial class SessionFactory(RuntimeOptions options, ILogger<SessionFactory> logger)
{
    /// <summary>Why CUDA was not used by the last session that fell back to CPU, or null.</summary>
    public string? CudaUnavailable { get; private set; }

    /// <summary>A session for a model that runs <paramref name="slots"/> batches at once (each on <paramref name="threads"/> intra-op threads, when given).</summary>
    public (InferenceSession Session, string Device) Create(string modelPath, int slots, int? threads = null)
    {
        var provider = options.ExecutionProvider.ToLowerInvariant();
        if (provider is not ("auto" or "cuda" or "cpu"))
        {
            throw new InvalidOperationException($"Processor:Runtime:ExecutionProvider must be auto, cuda or cpu, not '{options.ExecutionProvider}'.");
        }

        if (provider != "cpu")
        {
            try
            {
                return (CreateCuda(modelPath, slots, threads), "cuda");
            }
            catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
            {
                CudaUnavailable = e.Message.Trim();
                if (provider == "cuda")
                {
                    throw new InvalidOperationException($"Processor:Runtime:ExecutionProvider is cuda, but CUDA is not available: {CudaUnavailable}", e);
                }

                LogCudaUnavailable(logger, CudaUnavailable);
            }
        }

        return (new InferenceSession(modelPath, BaseOptions(slots, threads)), "cpu");
    }

    private SessionOptions BaseOptions(int slots, int? threads)
    {
        var session = new SessionOptions
        {
            IntraOpNumThreads = threads ?? options.ThreadsPerRun(slots, Environment.ProcessorCount),
            InterOpNumThreads = options.InterOpThreads,
            GraphOptimizationLevel = options.GraphOptimization.ToLowerInvariant() switch
            {
                "disabled" => GraphOptimizationLevel.ORT_DISABLE_ALL,
                "basic" => GraphOptimizationLevel.ORT_ENABLE_BASIC,
                "extended" => GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                "all" => GraphOptimizationLevel.ORT_ENABLE_ALL,
                var other => throw new InvalidOperationException($"Processor:Runtime:GraphOptimization must be disabled, basic, extended or all, not '{other}'."),
            },
        };

        // Threads of a run that wait for work sleep instead of spinning: the cores are shared with the
        // other models' runs and the processor's own I/O.
        session.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return session;
    }

    /// <summary>
    /// A session on CUDA (the GPU package's provider): fails when the provider or the CUDA 13 /
    /// cuDNN 9 libraries it needs do not load (no GPU, no driver, the CPU package).
    /// </summary>
    private InferenceSession CreateCuda(string modelPath, int slots, int? threads)
    {
        var sessionOptions = BaseOptions(slots, threads);
        try
        {
            sessionOptions.AppendExecutionProvider_CUDA(options.CudaDeviceId);
            return new InferenceSession(modelPath, sessionOptions);
        }
        catch
        {
            sessionOptions.Dispose();
            throw;
        }
    }

    [LoggerMessage(LogLevel.Information, "CUDA is not available ({Reason}); running on CPU")]
    private static partial void LogCudaUnavailable(ILogger logger, string reason);
}
