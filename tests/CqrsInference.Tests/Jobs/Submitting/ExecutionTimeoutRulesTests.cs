using System.Text.Json;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Commands.Models;

namespace CqrsInference.Tests.Jobs.Submitting;

/// <summary>Where a job's execution timeout comes from: the manifest's cap, the submit's request, and the two together.</summary>
public sealed class ExecutionTimeoutRulesTests : IDisposable
{
    private readonly string _manifest = Path.Combine(Path.GetTempPath(), $"cqrsi-manifest-{Guid.NewGuid():N}.json");

    public void Dispose() => File.Delete(_manifest);

    [Fact]
    public void Fields_a_manifest_entry_leaves_out_take_the_documented_defaults()
    {
        var model = Load("").All.Single();

        model.Slots.ShouldBe(1);
        model.ExecutionTimeoutMs.ShouldBe(ModelDefinition.DefaultTimeoutMs);
        model.MaxBatch.ShouldBe(1);
        model.Description.ShouldBe("");
    }

    private ModelCatalog Load(string timeoutField)
    {
        File.WriteAllText(_manifest, $$"""
            [{ "name": "m", "version": "1", "runner": "tensor", "file": "m.onnx",
               "inputs": [{ "name": "x", "datatype": "FP32", "shape": [-1, 4] }],
               "outputs": [{ "name": "y", "datatype": "FP32", "shape": [-1, 3] }]{{timeoutField}} }]
            """);
        return ModelCatalog.Load(_manifest, Path.GetTempPath());
    }

    private ModelDefinition Model(int timeoutMs)
    {
        Load($$""", "timeoutMs": {{timeoutMs}}""").TryGet("m", out var model).ShouldBeTrue();
        return model;
    }

    [Fact]
    public void A_model_without_timeoutMs_gets_30_seconds()
    {
        Load("").TryGet("m", out var model).ShouldBeTrue();

        model.ExecutionTimeoutMs.ShouldBe(30_000);
    }

    [Fact]
    public void A_model_with_timeoutMs_keeps_it()
    {
        Load(""", "timeoutMs": 1500""").TryGet("m", out var model).ShouldBeTrue();

        model.ExecutionTimeoutMs.ShouldBe(1500);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("3600001")]
    public void A_manifest_timeoutMs_out_of_range_stops_the_load_naming_the_model(string timeoutMs)
    {
        Should.Throw<InvalidDataException>(() => Load($$""", "timeoutMs": {{timeoutMs}}"""))
            .Message.ShouldBe($"Model 'm' has timeoutMs {timeoutMs}; it must be 1 to 3600000 (an hour), or absent for 30000.");
    }

    [Theory]
    [InlineData(null, 2000)]
    [InlineData(500, 500)]
    [InlineData(2000, 2000)]
    [InlineData(60_000, 2000)]
    public void A_job_runs_under_the_timeout_it_asked_for_never_more_than_its_models(int? requestedMs, int effectiveMs)
    {
        Model(timeoutMs: 2000).TimeoutFor(requestedMs).ShouldBe(TimeSpan.FromMilliseconds(effectiveMs));
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData(0.5, "timeout must be at least 1ms.")]
    [InlineData(2000.0, null)]
    [InlineData(2000.5, "timeout 2001 ms is over model 'm''s cap of 2000 ms; ask for at most 2000ms.")]
    [InlineData(60_000.0, "timeout 60000 ms is over model 'm''s cap of 2000 ms; ask for at most 2000ms.")]
    public void Submit_refuses_a_timeout_under_a_millisecond_or_over_the_models_cap(double? requestedMs, string? refusal)
    {
        var requested = requestedMs is { } ms ? TimeSpan.FromMilliseconds(ms) : (TimeSpan?)null;

        SubmitDecision.TimeoutRefusal(Model(timeoutMs: 2000), requested).ShouldBe(refusal);
    }

    [Fact]
    public void A_job_queued_or_an_event_stored_before_timeouts_existed_reads_as_asking_for_none()
    {
        var old = """{"jobId":"0e7c3f5e-5f8a-4a4a-9a65-6f8b1d9e2c11","tenant":"t","model":"m","modelVersion":"1","region":"local","priority":"interactive","submittedAt":"2026-01-01T00:00:00Z","requestDigest":"d","inputs":[],"metadata":null}""";

        var job = JsonSerializer.Deserialize(old, CqrsInference.Commands.WireJson.Default.JobCommand)!;

        job.TimeoutMs.ShouldBeNull();
        job.ToSubmitted(0).TimeoutMs.ShouldBeNull();
        JsonSerializer.Deserialize(JsonSerializer.Serialize(job with { TimeoutMs = 250 }, CqrsInference.Commands.WireJson.Default.JobCommand),
            CqrsInference.Commands.WireJson.Default.JobCommand)!.TimeoutMs.ShouldBe(250);

        var submitted = """{"jobId":"0e7c3f5e-5f8a-4a4a-9a65-6f8b1d9e2c11","tenant":"t","model":"m","modelVersion":"1","region":"local","priority":"interactive","submittedAt":"2026-01-01T00:00:00Z","requestDigest":"d","inputBytes":10,"metadata":null,"inputsRef":null,"webhook":null,"deadline":null}""";
        JsonSerializer.Deserialize(submitted, CqrsInference.Commands.WireJson.Default.JobSubmitted)!.TimeoutMs.ShouldBeNull();
    }
}
