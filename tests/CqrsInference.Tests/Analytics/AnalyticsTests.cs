using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Projections.Analytics;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using NATS.Client.JetStream;

namespace CqrsInference.Tests.Analytics;

/// <summary>API and projections (with the async daemon), prices per device class, no processor.</summary>
public sealed class AnalyticsTests(PipelineWithPricesAndNoProcessor pipeline) : IClassFixture<PipelineWithPricesAndNoProcessor>
{
    private static readonly DateTimeOffset Hour = new(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);
    private readonly HttpClient _client = pipeline.Operator;

    [Fact]
    public async Task A_known_workload_gives_exactly_the_expected_usage_cost_and_percentiles()
    {
        await RecordSyntheticWorkloadAsync();
        var query = $"/v1/analytics/usage?from={Iso(Hour)}&to={Iso(Hour.AddHours(1))}&groupBy=model,device";

        var rows = await Retry.Until("the usage roll-up to catch up", async () => await _client.GetFromJsonAsync<JsonElement>(query),
            r => r.EnumerateArray().Any(x => x.GetProperty("device").GetString() == "h100" && x.GetProperty("succeeded").GetInt64() == 3 && x.GetProperty("failed").GetInt64() == 1));

        var submitted = rows.EnumerateArray().Single(r => r.GetProperty("device").GetString() == "-");
        submitted.GetProperty("submitted").GetInt64().ShouldBe(4);
        var run = rows.EnumerateArray().Single(r => r.GetProperty("device").GetString() == "h100");
        run.GetProperty("model").GetString().ShouldBe("synthetic");
        run.GetProperty("busySeconds").GetDouble().ShouldBe(0.5);                     // 100/2 + 100/2 + 400/1 ms
        run.GetProperty("cost").GetDecimal().ShouldBe(0.0005m);                        // 0.5 s × 3.6 per hour / 3600
        run.GetProperty("meanBatchSize").GetDouble().ShouldBe(1.667);                  // (2 + 2 + 1) / 3
        run.GetProperty("overflowed").GetInt64().ShouldBe(1);                         // one "eu" job ran in "us"
        run.GetProperty("queueWaitP50Ms").GetDouble().ShouldBe(Bound(20));            // 10, 20, 30, 1000 ms
        run.GetProperty("queueWaitP99Ms").GetDouble().ShouldBe(Bound(1000));
        run.GetProperty("runP50Ms").GetDouble().ShouldBe(Bound(100));                 // 100, 100, 400 ms
        run.GetProperty("runP99Ms").GetDouble().ShouldBe(Bound(400));

        var utilization = await Retry.Until("the utilization roll-up to catch up",
            async () => await _client.GetFromJsonAsync<JsonElement>($"/v1/analytics/utilization?from={Iso(Hour)}&to={Iso(Hour.AddHours(1))}&groupBy=worker"),
            r => r.EnumerateArray().Any(x => x.GetProperty("key").GetString() == "synthetic-gpu-1" && x.GetProperty("onlineSeconds").GetDouble() == 1200));
        var gpu = utilization.EnumerateArray().Single(x => x.GetProperty("key").GetString() == "synthetic-gpu-1");
        gpu.GetProperty("slotSeconds").GetDouble().ShouldBe(2400);
        gpu.GetProperty("busySeconds").GetDouble().ShouldBe(1200);
        gpu.GetProperty("busyPercent").GetDouble().ShouldBe(50);

        using var csvRequest = new HttpRequestMessage(HttpMethod.Get, query);
        csvRequest.Headers.Accept.ParseAdd("text/csv");
        using var csv = await _client.SendAsync(csvRequest);
        csv.Content.Headers.ContentType!.MediaType.ShouldBe("text/csv");
        var lines = (await csv.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines[0].ShouldStartWith("bucket,model,region,tenant,device,submitted,succeeded,failed,busySeconds,cost");
        lines.ShouldContain(l => l.StartsWith("2026-01-01T10:00:00Z,synthetic,,,h100,0,3,1,0.5,0.0005,", StringComparison.Ordinal));

        // Rebuilding the roll-ups from the event log gives the same documents.
        var before = await UsageDocumentsAsync();
        using (var daemon = await pipeline.Store.BuildProjectionDaemonAsync())
        {
            await daemon.RebuildProjectionAsync<UsageProjection>(CancellationToken.None);
        }

        (await UsageDocumentsAsync()).ShouldBe(before);
    }

    [Fact]
    public async Task A_replayed_result_is_not_counted_twice()
    {
        var job = await _client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        await using (var processor = new PipelineHost(pipeline.Nats.Url, pipeline.Host.Schema, "processor"))
        {
            _ = processor.Server;
            await _client.WaitForStatusAsync(job.Id, "succeeded");
        }

        var now = DateTimeOffset.UtcNow;
        var query = $"/v1/analytics/usage?from={Iso(now.AddHours(-2))}&to={Iso(now.AddHours(1))}&groupBy=model,device";
        JsonElement Row(JsonElement rows) => rows.EnumerateArray().Single(r => r.GetProperty("model").GetString() == "mlp-test" && r.GetProperty("device").GetString() == "cpu");
        await Retry.Until("the job to be counted", async () => await _client.GetFromJsonAsync<JsonElement>(query),
            r => r.EnumerateArray().Any(x => x.GetProperty("model").GetString() == "mlp-test" && x.GetProperty("succeeded").GetInt64() == 1));

        // The same result once more under a new message id, as a replayed batch would carry it.
        var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}/events");
        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            var ack = await js.PublishAsync(
                LogSubjects.JobEvent("local", "mlp-test", job.Id),
                Encoding.UTF8.GetBytes(events[events.GetArrayLength() - 1].GetProperty("data").GetRawText()),
                headers: new NATS.Client.Core.NatsHeaders { [NatsTopology.EventTypeHeader] = EventNames.JobSucceeded },
                opts: new NatsJSPubOpts { MsgId = Guid.NewGuid().ToString() });
        await JobMessages.WaitUntilRecordedAsync(pipeline.Host.Services, ack.Seq);
        }

        var lag = await Retry.Until("the roll-ups to catch up", async () => await _client.GetFromJsonAsync<JsonElement>("/v1/analytics/lag"),
            l => l.GetProperty("projections").EnumerateArray().All(p => p.GetProperty("behind").GetInt64() == 0));
        lag.GetProperty("projections").GetArrayLength().ShouldBeGreaterThanOrEqualTo(2);
        var row = Row(await _client.GetFromJsonAsync<JsonElement>(query));
        row.GetProperty("succeeded").GetInt64().ShouldBe(1);

        // A sub-millisecond CPU run costs a few hundred-millionths: shown to the invoice's 9 decimals, not as 0.
        var busy = row.GetProperty("busySeconds").GetDecimal();
        row.GetProperty("cost").GetDecimal().ShouldBe(Math.Round(busy * 0.36m / 3600m, 9), 0.000000001m);
        row.GetProperty("cost").GetDecimal().ShouldBeGreaterThan(0m);
    }

    [Fact]
    public async Task A_processor_that_dies_without_a_word_is_closed_by_the_timeout()
    {
        var settings = new Dictionary<string, string> { ["Processor:HeartbeatInterval"] = "00:00:00.500", ["Processor:Models:0"] = "mlp-test" };
        await using var processor = await ProcessorProcess.StartAsync(pipeline.Nats.Url, "doomed-1", settings);
        async Task<JsonElement> Doomed() => (await _client.GetFromJsonAsync<JsonElement>("/v1/analytics/processors"))
            .EnumerateArray().FirstOrDefault(p => p.GetProperty("worker").GetString() == "doomed-1");
        await Retry.Until("the processor to be seen online", Doomed, p => p.ValueKind == JsonValueKind.Object && p.GetProperty("online").GetBoolean());

        await processor.KillAsync();

        var closed = await Retry.Until("the processor to be closed by the timeout", Doomed, p => !p.GetProperty("online").GetBoolean());
        closed.GetProperty("offlineReason").GetString().ShouldBe("timeout");
        closed.GetProperty("device").GetString().ShouldBe("cpu");
    }

    [Theory]
    [InlineData("groupBy=colour")]
    [InlineData("bucket=week")]
    [InlineData("from=yesterday")]
    [InlineData("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z")]
    public async Task Bad_analytics_queries_are_refused(string query)
    {
        using var response = await _client.GetAsync($"/v1/analytics/usage?{query}");

        response.StatusCode.ShouldBe(System.Net.HttpStatusCode.UnprocessableEntity);
    }

    private static double Bound(double milliseconds) => Math.Round(Histogram.UpperBoundMs(Histogram.BucketOf(milliseconds)), 3);

    private static string Iso(DateTimeOffset time) => Uri.EscapeDataString(time.ToString("O", System.Globalization.CultureInfo.InvariantCulture));

    private async Task<string> UsageDocumentsAsync()
    {
        await using var session = pipeline.Store.QuerySession();
        var docs = await session.Query<UsageBucket>().Where(u => u.Hour == Hour).OrderBy(u => u.Id).ToListAsync();
        return JsonSerializer.Serialize(docs);
    }

    /// <summary>Four jobs in one hour on an "h100", and a processor heartbeating 50% busy, as events.</summary>
    private async Task RecordSyntheticWorkloadAsync()
    {
        var context = new JobContext("default", "synthetic", "eu", "h100");
        double[] waits = [10, 20, 30, 1000];
        (double RunMs, int Batch)[] runs = [(100, 2), (100, 2), (400, 1)];
        await using var session = pipeline.Store.LightweightSession();
        for (var i = 0; i < 4; i++)
        {
            var id = Guid.NewGuid();
            var submittedAt = Hour.AddMinutes(5);
            object[] events = i < 3
                ? [Submitted(id, submittedAt), new V1.JobStarted(id, 1, "synthetic-gpu-1", "cuda", Hour.AddMinutes(6), waits[i], context, "us", Overflowed: i == 0),
                    new V1.JobSucceeded(id, 1, "synthetic-gpu-1", "cuda", Hour.AddMinutes(7), runs[i].RunMs, runs[i].Batch, [], null, context)]
                : [Submitted(id, submittedAt), new V1.JobStarted(id, 1, "synthetic-gpu-1", "cuda", Hour.AddMinutes(6), waits[i], context),
                    new V1.JobFailed(id, 1, "synthetic-gpu-1", "cuda", Hour.AddMinutes(7), "boom", "synthetic failure", false, context)];
            session.Events.StartStream<Projections.JobStatus.JobStatus>(id, events);
        }

        var worker = EventNames.ProcessorStreamId("synthetic-gpu-1");
        session.Events.StartStream(worker,
            new V1.ProcessorOnline("synthetic-gpu-1", "eu", "h100", 2, ["synthetic"], Hour),
            new V1.ProcessorHeartbeat("synthetic-gpu-1", "eu", "h100", 2, Hour.AddMinutes(10), 600, 300),
            new V1.ProcessorHeartbeat("synthetic-gpu-1", "eu", "h100", 2, Hour.AddMinutes(20), 600, 900));
        await session.SaveChangesAsync();

        V1.JobSubmitted Submitted(Guid id, DateTimeOffset at) =>
            new(id, "default", "synthetic", "1", "eu", "batch", at, "digest", 10, null);
    }
}
