using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Api.Security;
using CqrsInference.Tests.Fixtures;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace CqrsInference.Tests.OpenApi;

/// <summary>
/// The OpenAPI document (<c>/openapi/v1.json</c>) read as a client generator reads it: every
/// endpoint is an operation with its security, every answer it can give (problems with their schema
/// and headers), typed request and response schemas, and its text representations. The document is
/// also the committed copy the typed client is generated from (set CQRSI_UPDATE_OPENAPI=1 to rewrite it).
/// </summary>
public sealed class OpenApiDocumentTests(PipelineWithoutProcessors pipeline) : IClassFixture<PipelineWithoutProcessors>
{
    [Fact]
    public async Task Served_document_is_the_committed_one_the_client_is_generated_from()
    {
        var served = (await ApiDocument.LoadAsync(pipeline.Client)).Portable();
        if (Environment.GetEnvironmentVariable("CQRSI_UPDATE_OPENAPI") == "1")
        {
            await File.WriteAllTextAsync(ApiDocument.CommittedPath, served);
        }

        var committed = await File.ReadAllTextAsync(ApiDocument.CommittedPath);
        JsonElement.DeepEquals(JsonDocument.Parse(committed).RootElement, JsonDocument.Parse(served).RootElement)
            .ShouldBeTrue("docs/openapi/v1.json is not the served document: rerun this test with CQRSI_UPDATE_OPENAPI=1 and commit it.");
    }

    [Fact]
    public async Task Every_endpoint_is_an_operation_with_a_summary_and_the_security_of_its_policy()
    {
        var document = await ApiDocument.LoadAsync(pipeline.Client);
        var endpoints = DescribedEndpoints();
        document.Operations.Select(o => o.Id).Order().ShouldBe(endpoints.Select(e => e.Name).Order());
        endpoints.Count.ShouldBeGreaterThan(20);

        foreach (var (name, policy) in endpoints)
        {
            var operation = document.Operation(name);
            operation.Body.GetProperty("summary").GetString().ShouldNotBeNullOrWhiteSpace(operation.ToString());
            operation.Body.GetProperty("tags").GetArrayLength().ShouldBe(1, operation.ToString());
            if (policy is null)
            {
                operation.Body.TryGetProperty("security", out _).ShouldBeFalse(operation.ToString());
                continue;
            }

            var requirement = operation.Body.GetProperty("security").EnumerateArray().Single().GetProperty("bearer");
            requirement.EnumerateArray().Select(r => r.GetString()).Order().ShouldBe(ApiPolicies.RolesOf(policy).Order(), operation.ToString());
        }

        var scheme = document.Root.GetProperty("components").GetProperty("securitySchemes").GetProperty("bearer");
        (scheme.GetProperty("type").GetString(), scheme.GetProperty("scheme").GetString()).ShouldBe(("http", "bearer"));
        document.Root.GetProperty("openapi").GetString()!.ShouldStartWith("3.1");
    }

    [Fact]
    public async Task Every_error_answer_is_a_problem_with_its_schema_and_headers()
    {
        var document = await ApiDocument.LoadAsync(pipeline.Client);
        foreach (var (name, policy) in DescribedEndpoints())
        {
            var operation = document.Operation(name);
            var statuses = operation.Statuses;
            statuses.ShouldContain(503, operation.ToString());
            if (policy is not null)
            {
                statuses.ShouldContain(401, operation.ToString());
                statuses.Contains(403).ShouldBe(ApiPolicies.NeedsOf(policy) is not null, operation.ToString());
            }

            foreach (var status in statuses.Where(s => s >= 400))
            {
                var response = operation.Responses.GetProperty($"{status}");
                var what = $"{operation} {status}";
                response.GetProperty("description").GetString().ShouldNotBeNullOrWhiteSpace(what);
                var content = response.GetProperty("content").EnumerateObject().ShouldHaveSingleItem(what);
                var schema = content.Value.GetProperty("schema").GetProperty("$ref").GetString();
                if (operation.Path.StartsWith("/v2", StringComparison.Ordinal))
                {
                    // The Open Inference Protocol's errors are {"error"}; its readiness says 503 {"ready": false}.
                    content.Name.ShouldBe("application/json", what);
                    schema.ShouldBeOneOf(["#/components/schemas/V2Error", "#/components/schemas/V2ServerReady", "#/components/schemas/V2ModelReady"], what);
                }
                else
                {
                    content.Name.ShouldBe("application/problem+json", what);
                    schema.ShouldBe(status == 422 ? "#/components/schemas/HttpValidationProblemDetails" : "#/components/schemas/ProblemDetails", what);
                }
                var headers = response.TryGetProperty("headers", out var h) ? h.EnumerateObject().Select(p => p.Name).ToList() : [];
                if (status is 401)
                {
                    headers.ShouldContain("WWW-Authenticate", what);
                }

                if (status is 429 or 503)
                {
                    headers.ShouldContain("Retry-After", what);
                }
            }
        }

        document.Schema("HttpValidationProblemDetails").GetProperty("properties").TryGetProperty("errors", out _).ShouldBeTrue();
    }

    [Fact]
    public async Task Every_answer_with_a_body_has_a_typed_schema_and_numbers_are_never_strings()
    {
        var document = await ApiDocument.LoadAsync(pipeline.Client);
        foreach (var operation in document.Operations)
        {
            foreach (var response in operation.Responses.EnumerateObject().Where(r => r.Name[0] == '2' && r.Name != "204"))
            {
                foreach (var media in response.Value.GetProperty("content").EnumerateObject())
                {
                    var schema = media.Value.GetProperty("schema");
                    var what = $"{operation} {response.Name} {media.Name}";
                    if (schema.TryGetProperty("$ref", out var reference))
                    {
                        reference.GetString().ShouldNotEndWith("/JsonElement", what);
                    }
                    else
                    {
                        schema.TryGetProperty("type", out _).ShouldBeTrue(what);
                    }
                }
            }

            if (operation.Body.TryGetProperty("requestBody", out var body))
            {
                // A batch is uploaded as a JSONL file (POST /v1/batches); every other body is typed JSON.
                var content = body.GetProperty("content");
                if (!content.TryGetProperty("application/jsonl", out _))
                {
                    content.GetProperty("application/json").GetProperty("schema").GetProperty("$ref").GetString()
                        .ShouldNotEndWith("/JsonElement", $"{operation}: the request body is untyped");
                }
            }
        }

        var numericAsText = ApiDocument.Objects(document.Root)
            .Where(o => o.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.Array)
            .Select(o => o.GetProperty("type").EnumerateArray().Select(t => t.GetString()).ToList())
            .Where(types => types.Contains("string") && (types.Contains("integer") || types.Contains("number")))
            .ToList();
        numericAsText.ShouldBeEmpty();
    }

    [Fact]
    public async Task Submit_declares_its_header_typed_body_and_every_refusal()
    {
        var document = await ApiDocument.LoadAsync(pipeline.Client);
        foreach (var id in new[] { "SubmitJob", "SubmitJobs" })
        {
            var submit = document.Operation(id);
            submit.Body.GetProperty("parameters").EnumerateArray()
                .ShouldContain(p => p.GetProperty("name").GetString() == "Idempotency-Key" && p.GetProperty("in").GetString() == "header");
            new[] { 202, 400, 401, 403, 409, 413, 415, 422, 429, 503 }.Except(submit.Statuses).ShouldBeEmpty(id);
        }

        var single = document.Operation("SubmitJob");
        single.Statuses.ShouldContain(200);
        single.Responses.GetProperty("202").GetProperty("headers").TryGetProperty("Location", out _).ShouldBeTrue();
        single.Body.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema").GetProperty("$ref").GetString()
            .ShouldBe("#/components/schemas/SubmitJobRequest");
        var request = document.Schema("SubmitJobRequest");
        request.GetProperty("required").EnumerateArray().Select(r => r.GetString()).ShouldBe(["model", "inputs"], ignoreOrder: true);
        Values(request, "priority").ShouldBe(["interactive", "batch", null]);
        Values(request, "mode").ShouldBe(["queued", "interactive", null]);
        request.GetProperty("properties").GetProperty("webhookEvents").GetProperty("items").GetProperty("enum").EnumerateArray()
            .Select(v => v.GetString()).ShouldBe(["started", "completed"]);
        Values(document.Schema("InputTensor"), "datatype").ShouldBe(["FP32", "FP64", "INT32", "INT64", "BOOL", "BYTES"]);
    }

    [Fact]
    public async Task Text_representations_are_declared_beside_or_instead_of_json()
    {
        var document = await ApiDocument.LoadAsync(pipeline.Client);

        foreach (var id in new[] { "Usage", "Utilization", "EdgeActivity" })
        {
            document.Operation(id).ContentTypes(200).ShouldBe(["application/json", "text/csv"], id);
        }

        document.Operation("AuditEvents").ContentTypes(200).ShouldBe(["application/json", "application/x-ndjson"]);
        document.Operation("StreamJob").ContentTypes(200).ShouldBe(["text/event-stream"]);
    }

    [Fact]
    public async Task Documented_submit_fields_are_the_fields_the_API_reads()
    {
        var document = await ApiDocument.LoadAsync(pipeline.Client);
        var documented = document.Schema("SubmitJobRequest").GetProperty("properties").EnumerateObject().Select(p => p.Name).ToList();

        // The parser names the fields it reads when it meets one it does not.
        using var unknown = await pipeline.Client.PostAsync("/v1/jobs", Json(Scenarios.MlpJob([1, 2, 3, 4])[..^1] + ",\"colour\":\"blue\"}"));
        unknown.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        var message = (await unknown.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").GetProperty("colour")[0].GetString()!;
        message[(message.IndexOf(':', StringComparison.Ordinal) + 1)..].TrimEnd('.').Split(',', StringSplitOptions.TrimEntries)
            .ShouldBe(documented, ignoreOrder: true);

        // A tensor with every documented field is read.
        var tensorFields = document.Schema("InputTensor").GetProperty("properties").EnumerateObject().Select(p => p.Name).ToList();
        tensorFields.ShouldBe(["name", "datatype", "shape", "data", "parameters"], ignoreOrder: true);
        using var full = await pipeline.Client.PostAsync("/v1/jobs",
            Json("""{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[[1,2,3,4]],"parameters":{"binary_data_size":16}}]}"""));
        full.StatusCode.ShouldBe(HttpStatusCode.Accepted);
    }

    private static List<string?> Values(JsonElement schema, string property) =>
        schema.GetProperty("properties").GetProperty(property).GetProperty("enum").EnumerateArray()
            .Select(v => v.ValueKind == JsonValueKind.Null ? null : v.GetString()).ToList();

    /// <summary>The endpoints the document describes, by name, with their policy (null: anonymous).</summary>
    private List<(string Name, string? Policy)> DescribedEndpoints() =>
        pipeline.Host.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .Where(e => e.Metadata.GetMetadata<IEndpointNameMetadata>() is not null
                && e.Metadata.GetMetadata<IExcludeFromDescriptionMetadata>() is not { ExcludeFromDescription: true })
            .Select(e => (e.Metadata.GetMetadata<IEndpointNameMetadata>()!.EndpointName,
                e.Metadata.GetMetadata<IAllowAnonymous>() is not null ? null
                    : e.Metadata.GetOrderedMetadata<IAuthorizeData>().Select(a => a.Policy).LastOrDefault(p => p is not null) ?? ApiPolicies.AnyCaller))
            .ToList();

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
