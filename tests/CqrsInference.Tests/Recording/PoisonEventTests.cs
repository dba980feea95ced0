using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CqrsInference.Messaging;
using CqrsInference.Projections.Recording.JobLog;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.JetStream;

namespace CqrsInference.Tests.Recording;

/// <summary>
/// An event PostgreSQL's jsonb cannot store that reached the log without passing the API (the
/// API refuses such input): recorded repaired, and its partition keeps recording. It used to fail
/// every attempt at its run, and every later event of the partition waited behind it for good.
/// </summary>
public sealed class PoisonEventTests(PipelineWithFaultInjection pipeline) : IClassFixture<PipelineWithFaultInjection>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task An_ending_holding_a_NUL_is_recorded_repaired_and_the_partition_keeps_recording()
    {
        // A finished job's ending, as the model of the poisoned one.
        var model = await _client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        await _client.WaitForStatusAsync(model.Id, "succeeded");
        var ending = JsonNode.Parse((await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{model.Id}/events"))[1].GetProperty("data").GetRawText())!;

        // A running job (4 s) whose ending arrives first from elsewhere, under the processor's own
        // message id (so the processor's later one is the duplicate), with a NUL in its worker.
        var poisoned = await _client.SubmitAsync(Scenarios.MlpJob([4, 3, 2, 1], """{"cqrsi-test-fault":"sleep:4000"}"""));
        await _client.WaitForStatusAsync(poisoned.Id, "queued");
        ending["jobId"] = poisoned.Id;
        ending["worker"] = "poison\0worker";
        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            var ack = await js.PublishAsync(
                LogSubjects.JobEvent("local", "mlp-test", poisoned.Id),
                Encoding.UTF8.GetBytes(ending.ToJsonString()),
                headers: new NATS.Client.Core.NatsHeaders { [NatsTopology.EventTypeHeader] = "v1.job_succeeded" },
                opts: new NatsJSPubOpts { MsgId = $"{poisoned.Id}:terminal" });
            ack.EnsureSuccess();
        }

        var events = await Retry.Until("the poisoned ending to be recorded",
            () => _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{poisoned.Id}/events"), e => e.GetArrayLength() >= 2);
        events[1].GetProperty("data").GetProperty("worker").GetString().ShouldBe("poison\uFFFDworker");
        (await _client.GetJobAsync(poisoned.Id)).GetProperty("status").GetString().ShouldBe("succeeded");

        // Every partition still records: jobs submitted after it end, each recorded once.
        var after = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => _client.SubmitAsync(Scenarios.MlpJob([i, 1, 1, 1]))));
        foreach (var job in after)
        {
            await _client.WaitForStatusAsync(job.Id, "succeeded");
            await Retry.Until($"job {job.Id} to be recorded whole", () => _client.RecordedCountsAsync(job.Id), c => c == (1, 1));
        }
    }

    [Theory]
    [InlineData("""{"a":"x\u0000y"}""", """{"a":"x\uFFFDy"}""")]
    [InlineData("""{"k\u0000":1}""", """{"k\uFFFD":1}""")]
    [InlineData("""{"n":1e-99999}""", """{"n":0}""")]
    [InlineData("""{"n":-1e1001}""", """{"n":-1.7976931348623157E+308}""")]
    public void A_document_jsonb_cannot_store_is_repaired(string json, string expected)
    {
        var storable = JsonbRepair.Storable(json, out var repaired);

        repaired.ShouldBeTrue();
        JsonNode.DeepEquals(JsonNode.Parse(storable), JsonNode.Parse(expected)).ShouldBeTrue(storable);
    }

    [Fact]
    public void An_overlong_number_becomes_the_nearest_double()
    {
        var storable = JsonbRepair.Storable("{\"n\":0." + new string('1', 20_000) + ",\"s\":\"" + new string('1', 500) + "\"}", out var repaired);

        repaired.ShouldBeTrue();
        var document = JsonNode.Parse(storable)!;
        document["n"]!.GetValue<double>().ShouldBe(0.1111111111111111);
        document["s"]!.GetValue<string>().ShouldBe(new string('1', 500));
    }

    [Theory]
    [InlineData("""{"id":"9e203100-0000-4000-8000-000000000000","x":[1.5e-45,3.4028234663852886e+38,1e1000]}""")]
    [InlineData("""{"text":"a \\u0000 that is a backslash and text","n":-0.5}""")]
    [InlineData("""{"digits":"11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"}""")]
    public void A_document_jsonb_stores_is_left_exactly_as_it_is(string json)
    {
        JsonbRepair.Storable(json, out var repaired).ShouldBeSameAs(json);
        repaired.ShouldBeFalse();
    }
}
