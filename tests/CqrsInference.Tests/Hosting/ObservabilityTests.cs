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
        metrics.ShouldContain("cqrsi_inference_duration_seconds_bucket");
        metrics.ShouldContain("cqrsi_inference_batch_size_bucket");
        metrics.ShouldContain("http_server_request_duration_seconds_bucket");
        metrics.ShouldNotContain("_milliseconds");
        await Retry.Until("the queue gauges", () => _client.GetStringAsync("/metrics"), text => text.Contains("cqrsi_queue_in_flight", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_processors_alert_series_read_0_from_its_start_not_no_data()
    {
        // A processor of a region of its own, before any job: alert rules on dead letters, failures
        // and redeliveries found no series at all ("no data") until the first of each happened.
        await using var nats = await NatsServerProcess.StartAsync();
        await using var processor = new PipelineHost(nats.Url, TestEnvironment.NewSchema(), "api,processor", new Dictionary<string, string?>
        {
            ["Processor:Region"] = "zero-series",
            ["Processor:Models:0"] = "mlp-test",
        });
        using var client = processor.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", TestEnvironment.OperatorKey);

        var metrics = await Retry.Until("the processor's series", () => client.GetStringAsync("/metrics"),
            text => text.Contains("region=\"zero-series\"", StringComparison.Ordinal));
        foreach (var (name, label) in new[]
        {
            ("cqrsi_jobs_dead_letters_total", (string?)null),
            ("cqrsi_jobs_redeliveries_total", null),
            ("cqrsi_jobs_completed_total", "status=\"failed\""),
            ("cqrsi_jobs_completed_total", "status=\"succeeded\""),
        })
        {
            metrics.Split('\n').ShouldContain(
                l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains("region=\"zero-series\"", StringComparison.Ordinal)
                    && l.Contains("model=\"mlp-test\"", StringComparison.Ordinal) && (label == null || l.Contains(label, StringComparison.Ordinal)),
                $"{name} {label}");
            Value(metrics, name, "zero-series", label).ShouldBe(0);
        }
    }

    [Fact]
    public async Task The_webhook_outcomes_read_0_from_the_dispatchers_start_not_no_data()
    {
        // An alert on given_up or refused deliveries found no series until the first of each.
        await using var nats = await NatsServerProcess.StartAsync();
        await using var host = new PipelineHost(nats.Url, TestEnvironment.NewSchema(), "api,projections", new Dictionary<string, string?>
        {
            ["Webhooks:SigningKey"] = "observability-test-signing-key",
        });
        using var client = host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", TestEnvironment.OperatorKey);

        // Other tests of the process may deliver meanwhile (the meter is the process's), so every
        // outcome must be there, not just any: given_up and refused come from nothing but the start.
        string[] outcomes = ["delivered", "retried", "given_up", "refused"];
        await Retry.Until("every webhook outcome's series", () => client.GetStringAsync("/metrics"),
            text => outcomes.All(outcome => text.Split('\n').Any(
                l => l.StartsWith("cqrsi_webhooks_deliveries_total{", StringComparison.Ordinal) && l.Contains($"outcome=\"{outcome}\"", StringComparison.Ordinal))));
    }

    [Fact]
    public async Task Request_metrics_outlive_another_host_of_the_process_stopping()
    {
        // Test classes end while others run: a host stopping must not end the others' metric streams.
        await using (var other = new PipelineHost(pipeline.Nats.Url, TestEnvironment.NewSchema(), "api"))
        {
            using var client = other.CreateClient();
            (await client.GetAsync(new Uri("/v1/models", UriKind.Relative))).EnsureSuccessStatusCode();
        }

        // The SDK drops an ended stream after exporting it once more: scrape twice, past the exporter's 300 ms cache.
        for (var scrape = 0; scrape < 2; scrape++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(400));
            (await _client.GetAsync(new Uri("/v1/models", UriKind.Relative))).EnsureSuccessStatusCode();
            (await _client.GetStringAsync("/metrics")).ShouldContain("http_server_request_duration_seconds_bucket", Case.Sensitive, $"scrape {scrape + 1}");
        }
    }

    [Fact]
    public async Task The_libraries_own_metrics_are_exported_beside_the_systems()
    {
        await _client.WaitForStatusAsync((await _client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]))).Id, "succeeded");

        // A real HTTP call (refused: nothing listens on port 1) is measured by HttpClient's meter.
        using (var http = new HttpClient())
        {
            await Should.ThrowAsync<HttpRequestException>(http.GetAsync(new Uri("http://127.0.0.1:1/")));
        }

        var metrics = await Retry.Until("the libraries' metrics", () => _client.GetStringAsync("/metrics"), text => text.Contains("http_client_request_duration_seconds_bucket", StringComparison.Ordinal));
        metrics.ShouldContain("db_client_operation_duration_seconds_bucket");        // Npgsql
        metrics.ShouldContain("messaging_client_published_messages_total");          // NATS.Net
        metrics.ShouldContain("messaging_client_operation_duration_seconds_bucket"); // NATS.Net
    }

    [Fact]
    public void Every_instrument_measures_time_in_seconds_and_counts_with_an_annotation()
    {
        _ = Telemetry.Meter;
        var instruments = new List<System.Diagnostics.Metrics.Instrument>();
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == Telemetry.Name)
                {
                    lock (instruments)
                    {
                        instruments.Add(instrument);
                    }
                }
            },
        };
        listener.Start();

        instruments.ShouldContain(i => i.Name == Telemetry.InferenceDuration.Name);
        instruments.ShouldAllBe(i => i.Unit == "s" || (i.Unit != null && i.Unit.StartsWith('{') && i.Unit.EndsWith('}')), string.Join(", ", instruments.Select(i => $"{i.Name} [{i.Unit}]")));
        instruments.Where(i => i.Name.EndsWith(".duration", StringComparison.Ordinal) || i.Name.EndsWith("_age", StringComparison.Ordinal)).ShouldAllBe(i => i.Unit == "s");
    }

    [Fact]
    public async Task One_trace_spans_a_job_from_the_api_through_the_processor_to_the_recorder()
    {
        var spans = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            // NATS.Net's own spans too: with them, a message's trace context is its publish span's.
            ShouldListenTo = source => source.Name is Telemetry.Name or "NATS.Net",
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
        DescendsFrom(run, submit, spans).ShouldBeTrue();
        records.ShouldAllBe(r => r.TraceId == submit.TraceId);
        records.ShouldContain(r => DescendsFrom(r, submit, spans) && !DescendsFrom(r, run, spans)); // the submission, carried by the job message
        records.ShouldContain(r => DescendsFrom(r, run, spans));                                     // the processor's events
    }

    /// <summary>Whether <paramref name="span"/> is below <paramref name="ancestor"/>, through the spans seen (NATS.Net's publish spans sit between).</summary>
    private static bool DescendsFrom(Activity span, Activity ancestor, IEnumerable<Activity> seen)
    {
        var byId = seen.GroupBy(a => a.SpanId).ToDictionary(g => g.Key, g => g.First());
        for (var parent = span.ParentSpanId; parent != default; parent = byId.TryGetValue(parent, out var up) ? up.ParentSpanId : default)
        {
            if (parent == ancestor.SpanId)
            {
                return true;
            }
        }

        return false;
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
