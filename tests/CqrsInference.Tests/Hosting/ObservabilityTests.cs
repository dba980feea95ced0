using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using CqrsInference.Commands;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Hosting;

public sealed partial class ObservabilityTests(PipelineWithFaultInjection pipeline) : IClassFixture<PipelineWithFaultInjection>
{
    private readonly HttpClient _client = pipeline.Operator;

    [Fact]
    public async Task Metrics_reflect_a_known_workload()
    {
        // A region of its own, so the counts are this test's alone.
        const string region = PipelineWithFaultInjection.QuietRegion;
        var good = new List<Guid>();
        for (var i = 0; i < 4; i++)
        {
            good.Add((await _client.SubmitAsync(WithRegion(Scenarios.MlpJob([i, 1, 1, 1]), region))).Id);
        }

        var poison = (await _client.SubmitAsync(WithRegion(Scenarios.MlpJob([9, 9, 9, 9], """{"cqrsi-test-fault":"transient"}"""), region))).Id;
        foreach (var id in good)
        {
            await _client.WaitForStatusAsync(id, "succeeded");
        }

        await _client.WaitForStatusAsync(poison, "failed");

        var metrics = await Retry.Until("the dead letter to be counted", () => _client.GetStringAsync("/metrics"),
            text => Value(text, "cqrsi_jobs_dead_letters_total", region) == 1);
        Value(metrics, "cqrsi_jobs_submitted_total", region).ShouldBe(5);
        Value(metrics, "cqrsi_jobs_completed_total", region, "status=\"succeeded\"").ShouldBe(4);
        Value(metrics, "cqrsi_jobs_completed_total", region, "status=\"failed\"").ShouldBe(1);
        Value(metrics, "cqrsi_jobs_redeliveries_total", region).ShouldBe(2);

        // No processor lives in the test's region: every start (4 + 3 attempts) overflowed to "local".
        Value(metrics, "cqrsi_jobs_overflowed_total", region, "ran_in=\"local\"").ShouldBe(7);
        metrics.ShouldContain("cqrsi_inference_duration_milliseconds_bucket");
        metrics.ShouldContain("cqrsi_inference_batch_size_bucket");
        metrics.ShouldContain("http_server_request_duration_seconds_bucket");
        await Retry.Until("the queue gauges", () => _client.GetStringAsync("/metrics"), text => text.Contains("cqrsi_queue_in_flight", StringComparison.Ordinal));
    }

    [Fact]
    public async Task One_trace_spans_a_job_from_the_api_through_the_processor_to_the_recorder()
    {
        var spans = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == Telemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Add,
        };
        ActivitySource.AddActivityListener(listener);

        var job = await _client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        await _client.WaitForStatusAsync(job.Id, "succeeded");
        var id = job.Id.ToString();
        bool Of(Activity a) => (a.GetTagItem(Telemetry.JobIdTag) as string) == id;
        await Retry.Until("the recorder's spans for the job", () => Task.FromResult(spans.Count(a => a.OperationName == "event.record" && Of(a))), n => n >= 2);

        var submit = spans.Single(a => a.OperationName == "jobs.submit" && Of(a));
        var run = spans.Single(a => a.OperationName == "job.run" && Of(a));
        var records = spans.Where(a => a.OperationName == "event.record" && Of(a)).ToList();

        run.TraceId.ShouldBe(submit.TraceId);
        run.ParentSpanId.ShouldBe(submit.SpanId);
        records.ShouldAllBe(r => r.TraceId == submit.TraceId);
        records.ShouldContain(r => r.ParentSpanId == submit.SpanId);  // the submission, carried by the job message
        records.ShouldContain(r => r.ParentSpanId == run.SpanId);     // the processor's events
    }

    private static string WithRegion(string body, string region) => $"{{\"region\":\"{region}\",{body[1..]}";

    private static double Value(string metrics, string name, string region, string? label = null)
    {
        var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith(name + "{", StringComparison.Ordinal)
            && l.Contains($"region=\"{region}\"", StringComparison.Ordinal) && (label is null || l.Contains(label, StringComparison.Ordinal)));
        return line is null ? 0 : double.Parse(SampleValue().Match(line).Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"\}\s+([0-9.eE+-]+)")]
    private static partial Regex SampleValue();
}
