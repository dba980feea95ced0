using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace CqrsInference.Processors.Runtime;

/// <summary>ONNX Runtime session settings, bound from <c>Processor:Runtime</c>.</summary>
internal sealed class RuntimeOptions
{
    /// <summary><c>auto</c> (CUDA when its provider and libraries load, else CPU), <c>cuda</c> or <c>cpu</c>.</summary>
    public string ExecutionProvider { get; set; } = "auto";

    /// <summary>
    /// Path of <c>libonnxruntime_providers_cuda.so</c>, loaded as a plugin execution provider. The
    /// CUDA build of ONNX Runtime is not in the package mirror, so it is never a package dependency.
    /// </summary>
    public string? CudaProviderLibrary { get; set; }

    public int IntraOpThreads { get; set; } = 1;

    public int InterOpThreads { get; set; } = 1;

    /// <summary><c>disabled</c>, <c>basic</c>, <c>extended</c> or <c>all</c>.</summary>
    public string GraphOptimization { get; set; } = "all";
}

/// <summary>Creates inference sessions on the configured execution provider and says which device it got.</summary>
internal sealed partial class SessionFactory(RuntimeOptions options, ILogger<SessionFactory> logger)
{
    private static readonly Lock RegistrationLock = new();
    private static bool _cudaRegistered;

    public (InferenceSession Session, string Device) Create(string modelPath)
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
                return (CreateCuda(modelPath), "cuda");
            }
            catch (Exception e) when (provider == "auto")
            {
                LogCudaUnavailable(logger, e.Message);
            }
        }

        return (new InferenceSession(modelPath, BaseOptions()), "cpu");
    }

    private SessionOptions BaseOptions() => new()
    {
        IntraOpNumThreads = options.IntraOpThreads,
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

    // Not exercised on machines without a GPU: this path loads the CUDA plugin provider the way
    // docs/ARCHITECTURE.md describes and fails with a clear message when it cannot.
    private InferenceSession CreateCuda(string modelPath)
    {
        var library = options.CudaProviderLibrary
            ?? throw new InvalidOperationException("no CUDA provider library configured (Processor:Runtime:CudaProviderLibrary)");
        if (!File.Exists(library))
        {
            throw new FileNotFoundException($"CUDA provider library not found at '{library}'.", library);
        }

        var env = OrtEnv.Instance();
        lock (RegistrationLock)
        {
            if (!_cudaRegistered)
            {
                env.RegisterExecutionProviderLibrary("cuda", library);
                _cudaRegistered = true;
            }
        }

        var devices = env.GetEpDevices().Where(d => d.EpName.Contains("CUDA", StringComparison.OrdinalIgnoreCase)).ToList();
        if (devices.Count == 0)
        {
            throw new InvalidOperationException("the CUDA provider loaded but offers no device");
        }

        var sessionOptions = BaseOptions();
        sessionOptions.AppendExecutionProvider(env, devices, new Dictionary<string, string>());
        return new InferenceSession(modelPath, sessionOptions);
    }

    [LoggerMessage(LogLevel.Information, "CUDA is not available ({Reason}); running on CPU")]
    private static partial void LogCudaUnavailable(ILogger logger, string reason);
}
