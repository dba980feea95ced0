using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Tests.Infrastructure;
using WorkerJobs = CqrsInference.Tests.Processors.Worker.Jobs;
using Microsoft.ML.OnnxRuntime;

namespace CqrsInference.Tests.Processors.Runtime;

/// <summary>The generated MLP in ONNX Runtime, in process: what becomes of a job whose output is NaN or ±Infinity.</summary>
public sealed class NonFiniteOutputTests : IDisposable
{
    /// <summary>Within FP32, but x·W1 sums past float.MaxValue: the hidden layer and so y overflow.</summary>
    private const string Overflowing = "[3.4e38,3.4e38,3.4e38,3.4e38]";

    private readonly TensorRunner _runner;

    public NonFiniteOutputTests()
    {
        var catalog = ModelCatalog.Load(TestEnvironment.Manifest, TestEnvironment.ModelsDirectory);
        catalog.TryGet("mlp-test", out var model).ShouldBeTrue();
        _runner = new TensorRunner(model, new InferenceSession(GeneratedModels.Mlp.Build()), "cpu");
    }

    public void Dispose() => _runner.Dispose();

    private static JobCommand Job(string x) =>
        WorkerJobs.Command() with { Inputs = [new Tensor("x", "FP32", [1, 4], JsonDocument.Parse(x).RootElement.Clone())] };

    [Fact]
    public void The_reference_mlp_overflows_on_the_largest_inputs()
    {
        GeneratedModels.Mlp.Evaluate([3.4e38f, 3.4e38f, 3.4e38f, 3.4e38f]).ShouldContain(y => !float.IsFinite(y));
    }

    [Fact]
    public void A_lone_job_whose_output_is_not_finite_is_rejected_not_faulted()
    {
        var outcome = _runner.Run([Job(Overflowing)], CancellationToken.None).ShouldHaveSingleItem().ShouldBeOfType<RunOutcome.Rejected>();

        outcome.Code.ShouldBe(JobErrorCodes.NonFiniteOutput);
        outcome.Reason.ShouldStartWith("Output 'y' holds ");
        outcome.Reason.ShouldContain("non-finite");
        outcome.Reason.ShouldNotContain("cannot be written as valid JSON");
    }

    [Fact]
    public void A_job_whose_output_is_not_finite_fails_alone_and_its_batch_mates_succeed()
    {
        var outcomes = _runner.Run([Job("[1,2,3,4]"), Job(Overflowing), Job("[0.5,-1,2,0]")], CancellationToken.None);

        outcomes[0].ShouldBeOfType<RunOutcome.Succeeded>().Outputs[0].Data.EnumerateArray().Select(e => e.GetSingle())
            .ShouldBe(GeneratedModels.Mlp.Evaluate([1, 2, 3, 4]), tolerance: 1e-5f);
        outcomes[1].ShouldBeOfType<RunOutcome.Rejected>().Code.ShouldBe(JobErrorCodes.NonFiniteOutput);
        outcomes[2].ShouldBeOfType<RunOutcome.Succeeded>();
    }

    [Theory]
    [InlineData("[1,2,3,1e39]")]
    [InlineData("[1,2,3,\"NaN\"]")]
    public void A_queued_input_that_is_no_finite_FP32_is_rejected_before_the_run(string x)
    {
        // Submit refuses these; a job that reached the queue some other way must not fault on every retry.
        var outcome = _runner.Run([Job(x)], CancellationToken.None).ShouldHaveSingleItem().ShouldBeOfType<RunOutcome.Rejected>();

        outcome.Code.ShouldBe("invalid_input");
        outcome.Reason.ShouldBe("Element 3 of input 'x' is not a finite FP32 number.");
    }

    [Fact]
    public void An_output_with_NaN_and_infinities_counts_them_and_is_never_written_as_json()
    {
        var error = Should.Throw<NonFiniteOutputException>(() => TensorJson.Fp32("y", [1, 4], [1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity]));

        error.Code.ShouldBe(JobErrorCodes.NonFiniteOutput);
        error.Message.ShouldStartWith("Output 'y' holds 3 non-finite values (NaN or ±Infinity)");
        TensorJson.Fp32("y", [1, 2], [float.MaxValue, -float.Epsilon]).Data.GetArrayLength().ShouldBe(2);
    }
}
