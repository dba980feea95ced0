using CqrsInference.Processors.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace CqrsInference.Tests.Processors.Runtime;

public sealed class GeneratedModelsTests
{
    private static readonly long[] BatchShape = [20, GeneratedModels.Mlp.In];

    [Fact]
    public void Mlp_model_bytes_are_identical_on_every_build()
    {
        var first = GeneratedModels.Mlp.Build();
        var second = GeneratedModels.Mlp.Build();

        first.Length.ShouldBeGreaterThan(100);
        second.ShouldBe(first);
    }

    [Fact]
    public void Mlp_model_runs_in_onnx_runtime_and_matches_the_reference_evaluation()
    {
        const int rows = 20;
        var random = new Random(1234);
        var x = new float[rows * GeneratedModels.Mlp.In];
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (float)((random.NextDouble() * 8) - 4);
        }

        using var session = new InferenceSession(GeneratedModels.Mlp.Build());
        session.InputNames.ShouldBe(["x"]);
        session.OutputNames.ShouldBe(["y"]);

        using var input = OrtValue.CreateTensorValueFromMemory(x, BatchShape);
        using var options = new RunOptions();
        using var results = session.Run(options, new Dictionary<string, OrtValue> { ["x"] = input }, ["y"]);
        var output = results[0];
        output.GetTensorTypeAndShape().Shape.ShouldBe([rows, GeneratedModels.Mlp.Out]);
        var y = output.GetTensorDataAsSpan<float>().ToArray();

        for (var r = 0; r < rows; r++)
        {
            var row = x.AsSpan(r * GeneratedModels.Mlp.In, GeneratedModels.Mlp.In);
            var expected = GeneratedModels.Mlp.Evaluate(row);
            y.AsSpan(r * GeneratedModels.Mlp.Out, GeneratedModels.Mlp.Out).ToArray().ShouldBe(expected, tolerance: 1e-5f, $"row {r}");
        }
    }

    [Fact]
    public async Task Many_writers_at_once_leave_one_complete_model()
    {
        var directory = Path.Combine(Path.GetTempPath(), "cqrsi-gen-" + Guid.NewGuid().ToString("N"));
        var path = Path.Combine(directory, "generated", "mlp.onnx");
        try
        {
            await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => GeneratedModels.EnsureWritten(GeneratedModels.MlpV1, path))));

            (await File.ReadAllBytesAsync(path)).ShouldBe(GeneratedModels.Mlp.Build());
            Directory.GetFiles(Path.GetDirectoryName(path)!).ShouldBe([path]);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
