using System.Net;
using System.Text.Json;
using CqrsInference.Commands.Models;
using CqrsInference.Messaging;
using CqrsInference.Processors.Runtime;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using CqrsInference.Tests.Processors.Runtime;
using Microsoft.Extensions.DependencyInjection;

namespace CqrsInference.Tests.Inference;

/// <summary>The Open Inference Protocol (KServe v2) endpoints against the whole pipeline, with each model's real processor.</summary>
public sealed class OpenInferenceProtocolTests(PipelineWithAllRoles pipeline) : IClassFixture<PipelineWithAllRoles>
{
    private readonly HttpClient _client = pipeline.Client;

    private ModelCatalog Catalog => pipeline.Host.Services.GetRequiredService<ModelCatalog>();

    [Fact]
    public async Task An_fp32_request_with_id_parameters_and_outputs_gets_a_v2_response_with_the_id_and_the_requested_output()
    {
        float[] x = [1, 2, 3, 4];
        var answer = await _client.InferAsync("mlp-test", V2Scenarios.MlpRequest(x,
            ""","id":"request-42","parameters":{"priority":"interactive","timeout":"5s","sequence_id":7,"custom":{"a":1}},"outputs":[{"name":"y","parameters":{"binary_data":false}}]"""));

        answer.Status.ShouldBe(HttpStatusCode.OK, answer.Body.ToString());
        var body = answer.Body;
        body.GetProperty("model_name").GetString().ShouldBe("mlp-test");
        body.GetProperty("model_version").GetString().ShouldBe(Model("mlp-test").Version);
        body.GetProperty("id").GetString().ShouldBe("request-42");
        var y = body.GetProperty("outputs").EnumerateArray().ShouldHaveSingleItem();
        y.GetProperty("name").GetString().ShouldBe("y");
        y.GetProperty("datatype").GetString().ShouldBe("FP32");
        y.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ShouldBe([1L, 3L]);
        y.Floats().ShouldBe(GeneratedModels.Mlp.Evaluate(x), tolerance: 1e-5f);

        // The job behind it is an ordinary job of the caller's tenant, with its history on /v1.
        var job = await _client.GetJsonAsync($"/v1/jobs/{answer.JobId()}");
        job.GetProperty("status").GetString().ShouldBe("succeeded");
        job.GetProperty("priority").GetString().ShouldBe("interactive");
        body.GetProperty("parameters").GetProperty("served_by").GetString().ShouldBeOneOf("queue", "interactive");
    }

    [Fact]
    public async Task A_bytes_request_on_the_served_version_returns_only_the_requested_output()
    {
        var png = await RealModelTests.RenderLineAsync("Invoice 4711 paid");
        var version = Model("ppocr-rec").Version;
        var request = $$"""{"id":"ocr-1","inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["{{Convert.ToBase64String(png)}}"]}],"outputs":[{"name":"text"}]}""";

        var answer = await _client.PostV2Async($"/v2/models/ppocr-rec/versions/{version}/infer", request);

        answer.Status.ShouldBe(HttpStatusCode.OK, answer.Body.ToString());
        answer.Body.GetProperty("id").GetString().ShouldBe("ocr-1");
        answer.Body.GetProperty("model_version").GetString().ShouldBe(version);
        var text = answer.Body.GetProperty("outputs").EnumerateArray().ShouldHaveSingleItem();
        text.GetProperty("name").GetString().ShouldBe("text");
        text.GetProperty("datatype").GetString().ShouldBe("BYTES");
        text.GetProperty("data")[0].GetString().ShouldBe("Invoice 4711 paid");
    }

    [Fact]
    public async Task Without_outputs_every_output_is_returned_and_without_an_id_none_is_echoed()
    {
        var request = $$"""{"inputs":[{"name":"audio","shape":[1,576],"datatype":"FP32","data":[{{V2Scenarios.Floats(new float[576])}}]}]}""";

        var answer = await _client.InferAsync("silero-vad", request);

        answer.Status.ShouldBe(HttpStatusCode.OK, answer.Body.ToString());
        answer.Body.TryGetProperty("id", out _).ShouldBeFalse();
        answer.Body.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString())
            .ShouldBe(Model("silero-vad").Outputs.Select(o => o.Name));
    }

    [Fact]
    public async Task Every_models_metadata_matches_the_manifest()
    {
        foreach (var model in Catalog.All)
        {
            // versions: the serving ones, the default first (the repo's manifest serves ppocr-rec 4 and 4-gray).
            var serving = Catalog.VersionsOf(model.Name).Where(v => v.IsServing).OrderByDescending(v => v.IsDefault).Select(v => v.Version).ToList();
            foreach (var path in serving.Select(v => $"/v2/models/{model.Name}/versions/{v}").Prepend($"/v2/models/{model.Name}"))
            {
                var answer = await _client.GetV2Async(path);

                answer.Status.ShouldBe(HttpStatusCode.OK, path);
                var metadata = answer.Body;
                metadata.GetProperty("name").GetString().ShouldBe(model.Name);
                metadata.GetProperty("versions").EnumerateArray().Select(v => v.GetString()).ShouldBe(serving);
                metadata.GetProperty("platform").GetString().ShouldBe("onnxruntime_onnx");
                Tensors(metadata.GetProperty("inputs")).ShouldBe(model.Inputs.Select(Describe), path);
                Tensors(metadata.GetProperty("outputs")).ShouldBe(model.Outputs.Select(Describe), path);
            }

            var ready = await _client.GetV2Async($"/v2/models/{model.Name}/ready");
            ready.Status.ShouldBe(HttpStatusCode.OK);
            ready.Body.GetProperty("name").GetString().ShouldBe(model.Name);
            ready.Body.GetProperty("ready").GetBoolean().ShouldBeTrue();
        }
    }

    [Fact]
    public async Task Unknown_models_and_versions_are_404_in_the_v2_shape()
    {
        var mlp = Model("mlp-test");
        var request = V2Scenarios.MlpRequest([1, 2, 3, 4]);

        (await _client.InferAsync("no-such-model", request)).ShouldBeNotFound("no-such-model");
        (await _client.PostV2Async($"/v2/models/mlp-test/versions/{mlp.Version}9/infer", request)).ShouldBeNotFound($"{mlp.Version}9");
        (await _client.GetV2Async("/v2/models/no-such-model")).ShouldBeNotFound("no-such-model");
        (await _client.GetV2Async($"/v2/models/mlp-test/versions/{mlp.Version}9")).ShouldBeNotFound($"{mlp.Version}9");
        (await _client.GetV2Async("/v2/models/no-such-model/ready")).ShouldBeNotFound("no-such-model");
        (await _client.GetV2Async("/v2/no/such/route")).Error();

        // A long name is not echoed back whole.
        var longName = await _client.InferAsync(new string('m', 5000), request);
        longName.Status.ShouldBe(HttpStatusCode.NotFound);
        longName.Error().Length.ShouldBeLessThan(300);
    }

    [Fact]
    public async Task Bad_requests_are_400_in_the_v2_shape_name_the_fault_and_submit_nothing()
    {
        var before = await EventLogSizeAsync();
        var cases = new (string Body, string Names)[]
        {
            ("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3]""", "not valid JSON"),
            (V2Scenarios.MlpRequest([1, 2, 3, 4], ""","outputs":[{"name":"z"}]"""), "outputs[0].name"),
            (V2Scenarios.MlpRequest([1, 2, 3, 4], ""","outputs":[{"name":"y"},{"name":"y"}]"""), "outputs[1].name"),
            (V2Scenarios.MlpRequest([1, 2, 3, 4], ""","outputs":[{"name":"y","datatype":"FP32"}]"""), "outputs[0].datatype"),
            (V2Scenarios.MlpRequest([1, 2, 3, 4], ""","outputs":[{"name":"y","parameters":[1]}]"""), "outputs[0].parameters"),
            ("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]}""", "inputs[0]"),
            ("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,"three",4]}]}""", "inputs[0]"),
            ("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"INT64","data":[1,2,3,4]}]}""", "inputs[0].datatype"),
            ("""{"inputs":[{"name":"x","shape":[1,0],"datatype":"FP32","data":[]}]}""", "inputs[0].shape"),
            ("""{"inputs":[]}""", "inputs"),
            (V2Scenarios.MlpRequest([1, 2, 3, 4], ""","output":[{"name":"y"}]"""), "output"),
            (V2Scenarios.MlpRequest([1, 2, 3, 4], ""","parameters":{"timeout":5000}"""), "parameters.timeout"),
            (V2Scenarios.MlpRequest([1, 2, 3, 4], ""","parameters":{"priority":"urgent"}"""), "priority"),
            (V2Scenarios.MlpRequest([1, 2, 3, 4], ""","id":17"""), "id"),
            ("[1,2,3]", "JSON object"),
        };

        foreach (var (body, names) in cases)
        {
            var answer = await _client.InferAsync("mlp-test", body);

            answer.Status.ShouldBe(HttpStatusCode.BadRequest, body);
            answer.Error().ShouldContain(names, Case.Insensitive, body);
        }

        (await EventLogSizeAsync()).ShouldBe(before);
    }

    [Fact]
    public async Task Wrong_content_type_is_415_and_an_oversized_body_413_in_the_v2_shape_while_v1_keeps_problem_details()
    {
        var text = await _client.PostV2Async("/v2/models/mlp-test/infer", V2Scenarios.MlpRequest([1, 2, 3, 4]), contentType: "text/plain");
        text.Status.ShouldBe(HttpStatusCode.UnsupportedMediaType);
        text.Error().ShouldContain("application/json");

        // /v1 keeps problem+json for the same fault.
        var v1 = await _client.PostV2Async("/v1/jobs", Scenarios.MlpJob([1, 2, 3, 4]), contentType: "text/plain");
        v1.Status.ShouldBe(HttpStatusCode.UnsupportedMediaType);
        v1.ContentType.ShouldBe("application/problem+json");

        var huge = await _client.InferAsync("mlp-test", V2Scenarios.MlpRequest([1, 2, 3, 4], $$""","id":"{{new string('a', 9 * 1024 * 1024)}}" """));
        huge.Status.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        huge.Error().ShouldContain("bytes");
    }

    [Fact]
    public async Task A_job_that_fails_on_its_input_is_422_with_the_jobs_error()
    {
        var request = $$"""{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["{{Convert.ToBase64String("not an image at all"u8.ToArray())}}"]}]}""";

        var answer = await _client.InferAsync("ppocr-rec", request);

        answer.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        answer.Error().ShouldContain("undecodable_image");
    }

    [Fact]
    public async Task An_image_that_is_not_base64_is_refused_400_before_anything_is_stored()
    {
        var before = await EventLogSizeAsync();

        var answer = await _client.InferAsync("ppocr-rec", """{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["data:image/png;base64,iVBORw0KGgo="]}]}""");

        answer.Status.ShouldBe(HttpStatusCode.BadRequest);
        answer.Error().ShouldContain("inputs[0].data[0]");
        answer.Error().ShouldContain("base64");
        (await EventLogSizeAsync()).ShouldBe(before);
    }

    [Fact]
    public async Task Health_live_and_ready_and_the_server_metadata_answer()
    {
        var live = await _client.GetV2Async("/v2/health/live");
        live.Status.ShouldBe(HttpStatusCode.OK);
        live.Body.GetProperty("live").GetBoolean().ShouldBeTrue();

        var ready = await _client.GetV2Async("/v2/health/ready");
        ready.Status.ShouldBe(HttpStatusCode.OK);
        ready.Body.GetProperty("ready").GetBoolean().ShouldBeTrue();

        var server = await _client.GetV2Async("/v2");
        server.Status.ShouldBe(HttpStatusCode.OK);
        server.Body.GetProperty("name").GetString().ShouldBe("cqrsinference");
        server.Body.GetProperty("extensions").GetArrayLength().ShouldBe(0);
    }

    [Fact]
    public async Task OpenApi_document_has_the_v2_endpoints_with_typed_requests_and_responses()
    {
        var document = await _client.GetJsonAsync("/openapi/v1.json");
        var paths = document.GetProperty("paths");
        var schemas = document.GetProperty("components").GetProperty("schemas");

        var infer = paths.GetProperty("/v2/models/{model}/infer").GetProperty("post");
        infer.GetProperty("operationId").GetString().ShouldBe("V2Infer");
        infer.GetProperty("requestBody").GetRawText().ShouldContain("V2InferRequest");
        infer.GetProperty("responses").GetProperty("200").GetRawText().ShouldContain("V2InferResponse");
        infer.GetProperty("responses").GetProperty("400").GetRawText().ShouldContain("V2Error");
        paths.GetProperty("/v2/models/{model}/versions/{version}/infer").TryGetProperty("post", out _).ShouldBeTrue();
        paths.GetProperty("/v2/models/{model}").GetProperty("get").GetProperty("responses").GetProperty("200").GetRawText().ShouldContain("V2ModelMetadata");
        foreach (var path in new[] { "/v2/health/live", "/v2/health/ready", "/v2/models/{model}/ready" })
        {
            paths.TryGetProperty(path, out _).ShouldBeTrue(path);
        }

        schemas.GetProperty("V2InferResponse").GetProperty("properties").TryGetProperty("model_name", out _).ShouldBeTrue();
        schemas.GetProperty("V2InferRequest").GetProperty("properties").TryGetProperty("outputs", out _).ShouldBeTrue();
    }

    private ModelDefinition Model(string name) => Catalog.TryGet(name, out var model) ? model : throw new InvalidOperationException(name);

    private static string Describe(TensorSpec spec) => $"{spec.Name} {spec.Datatype} [{string.Join(",", spec.Shape)}]";

    private static IEnumerable<string> Tensors(JsonElement tensors) => tensors.EnumerateArray().Select(t =>
        $"{t.GetProperty("name").GetString()} {t.GetProperty("datatype").GetString()} [{string.Join(",", t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()))}]");

    private async Task<long> EventLogSizeAsync()
    {
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;
        return await JobMessages.CountAsync(js, NatsTopology.EventsStream);
    }
}

internal static class V2Assertions
{
    public static void ShouldBeNotFound(this V2Answer answer, string named)
    {
        answer.Status.ShouldBe(HttpStatusCode.NotFound, answer.Body.ToString());
        answer.Error().ShouldContain(named);
    }
}
