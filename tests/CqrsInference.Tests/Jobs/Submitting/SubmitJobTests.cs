using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Processors.Runtime;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using NATS.Client.JetStream;

namespace CqrsInference.Tests.Jobs.Submitting;

public sealed class SubmitJobTests(PipelineWithAllRoles pipeline) : IClassFixture<PipelineWithAllRoles>
{
    private readonly HttpClient _client = pipeline.Client;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_body_is_read_whole_with_or_without_a_content_length(bool chunked)
    {
        // Padded past the 16 KB the API reads a chunked body in: it is read through several times.
        float[] x = [1, 2, 3, 4];
        var body = Encoding.UTF8.GetBytes(Scenarios.MlpJob(x) + new string(' ', 40_000));
        using HttpContent content = chunked ? new UnsizedContent(body) : new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json");
        content.Headers.ContentLength.HasValue.ShouldBe(!chunked);

        using var response = await _client.PostAsync("/v1/jobs?wait=10s", content);

        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.OK, text);
        var done = JsonDocument.Parse(text).RootElement;
        done.GetProperty("outputs")[0].Floats().ShouldBe(GeneratedModels.Mlp.Evaluate(x), tolerance: 1e-5f);
    }

    [Fact]
    public async Task Submitted_job_succeeds_with_the_models_outputs()
    {
        float[] x = [1, 2, 3, 4];
        var job = await _client.SubmitAsync(Scenarios.MlpJob(x));

        job.Status.ShouldBe(HttpStatusCode.Accepted);
        job.Location.ShouldBe($"/v1/jobs/{job.Id}");
        job.Body.GetProperty("status").GetString().ShouldBe("queued");

        var done = await _client.WaitForStatusAsync(job.Id, "succeeded");
        var y = done.GetProperty("outputs")[0];
        y.GetProperty("name").GetString().ShouldBe("y");
        y.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ShouldBe([1L, 3L]);
        y.Floats().ShouldBe(GeneratedModels.Mlp.Evaluate(x), tolerance: 1e-5f);
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        done.GetProperty("device").GetString().ShouldBe("cpu");
        done.GetProperty("worker").GetString().ShouldNotBeNullOrEmpty();
        done.GetProperty("queueWaitMs").GetDouble().ShouldBeGreaterThanOrEqualTo(0);
        done.GetProperty("runMs").GetDouble().ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task Job_events_are_recorded_in_order()
    {
        var job = await _client.SubmitAsync(Scenarios.MlpJob([0.5f, -1, 2, 0]));
        await _client.WaitForStatusAsync(job.Id, "succeeded");

        var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}/events");

        // A short run carries its start on its ending: two events, not three.
        events.EnumerateArray().Select(e => e.GetProperty("type").GetString())
            .ShouldBe(["v1.job_submitted", "v1.job_succeeded"]);
        events.EnumerateArray().Select(e => e.GetProperty("version").GetInt64()).ShouldBe([1L, 2L]);
        var sequences = events.EnumerateArray().Select(e => e.GetProperty("sequence").GetInt64()).ToList();
        sequences.ShouldBe(sequences.Order().ToList());
        var succeeded = events[1].GetProperty("data");
        succeeded.GetProperty("attempt").GetInt32().ShouldBe(1);
        succeeded.GetProperty("batchSize").GetInt32().ShouldBeGreaterThanOrEqualTo(1);
        succeeded.GetProperty("start").GetProperty("ranInRegion").GetString().ShouldBe("local");
    }

    [Fact]
    public async Task Unknown_model_gets_problem_details_and_nothing_is_queued()
    {
        var before = await EventLogSizeAsync();

        using var response = await _client.PostAsync("/v1/jobs", Json("""{"model":"no-such-model","inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}"""));

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        problem.GetProperty("errors").GetProperty("model")[0].GetString()!.ShouldContain("no-such-model");
        (await EventLogSizeAsync()).ShouldBe(before);
    }

    [Fact]
    public async Task Malformed_json_gets_400_problem_details()
    {
        using var response = await _client.PostAsync("/v1/jobs", Json("""{"model": "mlp-test", "inputs": [ """));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        problem.GetProperty("title").GetString().ShouldBe("Malformed JSON");
    }

    [Fact]
    public async Task Input_of_the_wrong_shape_is_refused_naming_the_field()
    {
        var before = await EventLogSizeAsync();

        var job = await _client.SubmitAsync("""{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,5],"data":[1,2,3,4,5]}]}""");

        job.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        job.Body.GetProperty("errors").GetProperty("inputs[0].shape")[0].GetString()!.ShouldContain("must be 4");
        (await EventLogSizeAsync()).ShouldBe(before);
    }

    [Fact]
    public async Task Retried_submit_with_the_same_idempotency_key_returns_the_same_job()
    {
        var key = Guid.NewGuid().ToString();
        var body = Scenarios.MlpJob([1, 1, 1, 1]);

        var first = await _client.SubmitAsync(body, key);
        await _client.WaitForStatusAsync(first.Id, "succeeded");
        var second = await _client.SubmitAsync(body, key);
        var different = await _client.SubmitAsync(Scenarios.MlpJob([2, 2, 2, 2]), key);

        second.Status.ShouldBe(HttpStatusCode.Accepted);
        second.Id.ShouldBe(first.Id);
        second.Body.GetProperty("status").GetString().ShouldBe("succeeded");
        different.Status.ShouldBe(HttpStatusCode.Conflict);
        var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{first.Id}/events");
        events.GetArrayLength().ShouldBe(2);
    }

    [Fact]
    public async Task Concurrent_submits_with_one_key_and_different_bodies_accept_one_body_only()
    {
        var key = Guid.NewGuid().ToString();

        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => _client.SubmitAsync(Scenarios.MlpJob([i, 0, 0, 0]), key)));

        answers.Count(a => a.Status == HttpStatusCode.Accepted).ShouldBe(1);
        answers.Count(a => a.Status == HttpStatusCode.Conflict).ShouldBe(7);
        var accepted = answers.Single(a => a.Status == HttpStatusCode.Accepted);

        // Retried later, only the body that won is the same request.
        var retries = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => _client.SubmitAsync(Scenarios.MlpJob([i, 0, 0, 0]), key)));
        retries.Where(r => r.Status == HttpStatusCode.Accepted).Select(r => r.Id).ShouldBe([accepted.Id]);
        retries.Count(r => r.Status == HttpStatusCode.Conflict).ShouldBe(7);
    }

    [Fact]
    public async Task Models_endpoint_lists_each_model_with_its_tensors()
    {
        var models = await _client.GetFromJsonAsync<JsonElement>("/v1/models");

        var mlp = models.EnumerateArray().Single(m => m.GetProperty("name").GetString() == "mlp-test");
        mlp.GetProperty("versions")[0].GetString().ShouldBe("1");
        mlp.GetProperty("inputs")[0].GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ShouldBe([-1L, 4L]);
        models.EnumerateArray().Select(m => m.GetProperty("name").GetString()).ShouldBe(["mlp-test", "ppocr-rec", "silero-vad"]);
    }

    [Fact]
    public async Task A_replayed_result_event_is_recorded_once()
    {
        var job = await _client.SubmitAsync(Scenarios.MlpJob([3, 1, 4, 1]));
        var done = await _client.WaitForStatusAsync(job.Id, "succeeded");
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;

        // The same terminal event again under another message id, as a redelivered job whose
        // first result outlived JetStream's duplicate window would publish it.
        var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}/events");
        var succeeded = events[1].GetProperty("data").GetRawText();
        var ack = await js.PublishAsync(
            LogSubjects.JobEvent("local", "mlp-test", job.Id),
            Encoding.UTF8.GetBytes(succeeded),
            headers: new NATS.Client.Core.NatsHeaders { [NatsTopology.EventTypeHeader] = "v1.job_succeeded" },
            opts: new NATS.Client.JetStream.NatsJSPubOpts { MsgId = Guid.NewGuid().ToString() });
        ack.EnsureSuccess();
        await JobMessages.WaitUntilRecordedAsync(pipeline.Host.Services, ack.Seq);

        var after = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}/events");
        after.GetArrayLength().ShouldBe(2);
        (await _client.GetJobAsync(job.Id)).GetProperty("completedAt").GetString().ShouldBe(done.GetProperty("completedAt").GetString());
    }

    [Fact]
    public async Task Submit_with_wait_returns_the_finished_job_inline()
    {
        float[] x = [2, 4, 6, 8];
        using var response = await _client.PostAsync("/v1/jobs?wait=20s", Json(Scenarios.MlpJob(x)));

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var job = await response.Content.ReadFromJsonAsync<JsonElement>();
        job.GetProperty("status").GetString().ShouldBe("succeeded");
        job.GetProperty("outputs")[0].Floats().ShouldBe(GeneratedModels.Mlp.Evaluate(x), tolerance: 1e-5f);
    }

    [Theory]
    [InlineData("soon")]
    [InlineData("61s")]
    [InlineData("-1s")]
    public async Task Submit_with_an_invalid_wait_is_refused(string wait)
    {
        using var response = await _client.PostAsync($"/v1/jobs?wait={wait}", Json(Scenarios.MlpJob([1, 2, 3, 4])));

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
    }

    [Fact]
    public async Task OpenApi_document_has_the_endpoints_with_an_example_and_docs_are_served()
    {
        var document = await _client.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        var text = document.GetRawText();

        document.GetProperty("paths").TryGetProperty("/v1/jobs", out var jobs).ShouldBeTrue();
        jobs.GetProperty("post").GetProperty("operationId").GetString().ShouldBe("SubmitJob");
        text.ShouldContain("\"customer\"");
        document.GetProperty("paths").TryGetProperty("/v1/audit/verify", out _).ShouldBeTrue();

        using var docs = await _client.GetAsync("/docs");
        docs.StatusCode.ShouldBe(HttpStatusCode.OK);
        docs.Content.Headers.ContentType!.MediaType.ShouldBe("text/html");
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private async Task<long> EventLogSizeAsync()
    {
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;
        return await JobMessages.CountAsync(js, NatsTopology.EventsStream);
    }
}
