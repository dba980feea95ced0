using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Messaging;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Projections.Analytics;
using Microsoft.ML.OnnxRuntime;

// Micro-benchmarks of the hot paths: `dotnet run -c Release --project tools/MicroBench -- --filter '*' --job short`
BenchmarkSwitcher.FromAssembly(typeof(Serialization).Assembly).Run(args);

/// <summary>What every job costs on the wire: its message and its events, source-generated JSON.</summary>
[MemoryDiagnoser]
public class Serialization
{
    private readonly JobCommand _job = Samples.Job(576);
    private byte[] _bytes = [];
    private readonly V1.JobSucceeded _succeeded = new(Guid.NewGuid(), 1, "w", "cpu", DateTimeOffset.UtcNow, 1.5, 8, [TensorJson.Fp32("y", [1, 3], [1, 2, 3])], null, new JobContext("t", "m", "r", "cpu"));

    [GlobalSetup]
    public void Setup() => _bytes = JsonSerializer.SerializeToUtf8Bytes(_job, WireJson.Default.JobCommand);

    [Benchmark]
    public byte[] SerializeJob() => JsonSerializer.SerializeToUtf8Bytes(_job, WireJson.Default.JobCommand);

    [Benchmark]
    public JobCommand? DeserializeJob() => JsonSerializer.Deserialize(_bytes, WireJson.Default.JobCommand);

    [Benchmark]
    public byte[] SerializeResultEvent() => JsonSerializer.SerializeToUtf8Bytes(_succeeded, WireJson.Default.JobSucceeded);
}

/// <summary>Checks and ids the API and the recorder compute per job.</summary>
public class Validation
{
    private readonly ModelDefinition _vad = new()
    {
        Name = "silero-vad", Version = "5", Runner = "silero-vad", File = "x",
        Inputs = [new TensorSpec("audio", "FP32", [1, 576])], Outputs = [], Batching = new BatchingSpec(64, 2),
    };

    private readonly IReadOnlyList<Tensor> _inputs = Samples.Job(576).Inputs;

    [Benchmark]
    public int ValidateVadInput() => TensorValidator.Validate(_vad, _inputs).Count();

    [Benchmark]
    public Guid DeterministicEventId() => DeterministicGuid.ForEvent(Guid.Empty, EventNames.JobSucceeded, 1);

    private double _latency = 123.4;

    [Benchmark]
    public int HistogramBucket() => Histogram.BucketOf(_latency += 0.001);
}

/// <summary>Dynamic batching on CPU: 64 jobs in one ONNX call against 64 calls of one.</summary>
public class Batching
{
    private TensorRunner _runner = null!;
    private List<JobCommand> _jobs = [];

    [GlobalSetup]
    public void Setup()
    {
        var model = new ModelDefinition
        {
            Name = "mlp-test", Version = "1", Runner = "tensor", File = "mlp.onnx",
            Inputs = [new TensorSpec("x", "FP32", [-1, 4])], Outputs = [new TensorSpec("y", "FP32", [-1, 3])], Batching = new BatchingSpec(64, 2),
        };
        _runner = new TensorRunner(model, new InferenceSession(GeneratedModels.Mlp.Build(), new SessionOptions { IntraOpNumThreads = 1 }), "cpu");
        _jobs = Enumerable.Range(0, 64).Select(i => Samples.Mlp(i)).ToList();
    }

    [GlobalCleanup]
    public void Cleanup() => _runner.Dispose();

    [Benchmark(Baseline = true)]
    public int SixtyFourCallsOfOne() => _jobs.Sum(j => _runner.Run([j], CancellationToken.None).Count);

    [Benchmark]
    public int OneCallOfSixtyFour() => _runner.Run(_jobs, CancellationToken.None).Count;
}

internal static class Samples
{
    public static JobCommand Job(int samples) => new(Guid.NewGuid(), "t", "silero-vad", "5", "local", "interactive", DateTimeOffset.UtcNow, "digest",
        [new Tensor("audio", "FP32", [1, samples], JsonSerializer.SerializeToElement(Enumerable.Range(0, samples).Select(i => (float)Math.Sin(i / 10.0)).ToArray()))], null);

    public static JobCommand Mlp(int i) => new(Guid.NewGuid(), "t", "mlp-test", "1", "local", "interactive", DateTimeOffset.UtcNow, "digest",
        [new Tensor("x", "FP32", [1, 4], JsonSerializer.SerializeToElement(new float[] { i, 1, 2, 3 }))], null);
}
