using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Hosting;

/// <summary>The whole pipeline with <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> pointing at a collector of the test's own.</summary>
public sealed class PipelineExportingOtlp : PipelineWithAllRoles, IAsyncLifetime
{
    public OtlpReceiver Collector { get; private set; } = null!;

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Collector.Url,
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["OTEL_METRIC_EXPORT_INTERVAL"] = "500",
        ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        ["Processor:Models:0"] = "mlp-test",
    };

    public override async Task InitializeAsync()
    {
        Collector = await OtlpReceiver.StartAsync();
        await base.InitializeAsync();
    }

    async Task IAsyncLifetime.DisposeAsync()
    {
        await DisposeAsync();
        await Collector.DisposeAsync();
    }
}

public sealed class OtlpExportTests(PipelineExportingOtlp pipeline) : IClassFixture<PipelineExportingOtlp>
{
    [Fact]
    public async Task With_an_OTLP_endpoint_a_jobs_spans_the_libraries_spans_and_the_metrics_reach_the_collector()
    {
        var job = await pipeline.Operator.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        await pipeline.Operator.WaitForStatusAsync(job.Id, "succeeded");
        var collector = pipeline.Collector;

        // Spans leave in batches: the submit span and the run span may reach the collector in different exports.
        await Retry.Until("the job's spans at the collector", () => Task.FromResult(collector.Received("traces", job.Id.ToString())), seen => seen);
        await Retry.Until("the submit span", () => Task.FromResult(collector.Received("traces", "jobs.submit")), seen => seen);
        await Retry.Until("the run span", () => Task.FromResult(collector.Received("traces", "job.run")), seen => seen);
        collector.Received("traces", "cqrsinference").ShouldBeTrue(); // service.name
        await Retry.Until("the libraries' spans", () => Task.FromResult(collector.Received("traces", "NATS.Net") && collector.Received("traces", "Npgsql")), seen => seen);

        await Retry.Until("the metrics at the collector", () => Task.FromResult(collector.Received("metrics", "cqrsi.jobs.submitted")), seen => seen);
        await Retry.Until("the inference histogram", () => Task.FromResult(collector.Received("metrics", "cqrsi.inference.duration")), seen => seen);
        collector.Received("metrics", "db.client.operation.duration").ShouldBeTrue();
    }
}
