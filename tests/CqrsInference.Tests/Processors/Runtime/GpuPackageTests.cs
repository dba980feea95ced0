using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace CqrsInference.Tests.Processors.Runtime;

/// <summary>
/// Processors run on ONNX Runtime's GPU package (Microsoft.ML.OnnxRuntime.Gpu.Linux): CUDA when its
/// libraries load, else CPU with the reason. The machines the tests run on have no GPU, so what is
/// proved here is the package and its fallback; scripts/gpu-check.sh runs the CUDA path on a GPU.
/// </summary>
public sealed class GpuPackageTests
{
    private static readonly ModelCatalog Catalog = ModelCatalog.Load(TestEnvironment.Manifest, TestEnvironment.ModelsDirectory);

    [Fact]
    public void The_runtime_is_the_gpu_package_which_offers_cuda_next_to_the_cpu()
    {
        var providers = OrtEnv.Instance().GetAvailableProviders();

        providers.ShouldContain("CPUExecutionProvider");
        providers.ShouldContain("CUDAExecutionProvider", "the CPU package offers only the CPU provider; build with the default CqrsiOnnxRuntime=gpu");
    }

    [Fact]
    public void Auto_runs_on_cuda_when_it_loads_and_otherwise_on_the_cpu_naming_why()
    {
        var sessions = new SessionFactory(new RuntimeOptions { ExecutionProvider = "auto" }, NullLogger<SessionFactory>.Instance);

        using var runner = new RunnerFactory(Catalog, sessions).Create(Catalog.All.Single(m => m.Name == "mlp-test"), slots: 1);

        if (runner.Device == "cuda")
        {
            sessions.CudaUnavailable.ShouldBeNull();
            return;
        }

        runner.Device.ShouldBe("cpu");
        sessions.CudaUnavailable.ShouldNotBeNullOrWhiteSpace();
        sessions.CudaUnavailable.ShouldContain("cuda", Case.Insensitive);
        runner.WarmUp();
    }

    [Fact]
    public void A_processor_told_to_use_cuda_that_cannot_stops_with_the_reason_instead_of_running_on_the_cpu()
    {
        var probe = new SessionFactory(new RuntimeOptions { ExecutionProvider = "auto" }, NullLogger<SessionFactory>.Instance);
        using (new RunnerFactory(Catalog, probe).Create(Catalog.All.Single(m => m.Name == "mlp-test"), slots: 1))
        {
            if (probe.CudaUnavailable is null)
            {
                return; // A machine with a GPU: cuda works, nothing to refuse.
            }
        }

        var sessions = new SessionFactory(new RuntimeOptions { ExecutionProvider = "cuda" }, NullLogger<SessionFactory>.Instance);
        var refused = Should.Throw<InvalidOperationException>(() => new RunnerFactory(Catalog, sessions).Create(Catalog.All.Single(m => m.Name == "mlp-test"), slots: 1));

        refused.Message.ShouldStartWith("Processor:Runtime:ExecutionProvider is cuda, but CUDA is not available:");
    }
}
