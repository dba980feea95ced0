using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;

namespace CqrsInference.Tests.Security;

/// <summary>Query parameters no endpoint takes: refused, never ignored.</summary>
public sealed partial class HostileInputTests
{
    [Theory]
    [InlineData("GET", "/v1/jobs?stauts=failed", "stauts", "after, limit, model, status, tenant")]
    [InlineData("GET", "/v1/jobs?Status=failed&tenantId=acme", "tenantId", "after, limit, model, status, tenant")]
    [InlineData("GET", "/v1/analytics/usage?groupby=model&region=local", "region", "bucket, from, groupBy, to")]
    [InlineData("GET", "/v1/models?model=mlp-test", "model", "none")]
    [InlineData("DELETE", "/v1/admin/keys/not-a-key?force=true", "force", "none")]
    public async Task A_query_parameter_the_endpoint_does_not_take_is_400_naming_it_and_what_it_takes(string method, string path, string unknown, string takes)
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);

        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        var errors = problem.GetProperty("errors");
        errors.EnumerateObject().Select(e => e.Name).ShouldBe([unknown], "only the unknown parameter is named (names are matched without case, as bound)");
        errors.GetProperty(unknown)[0].GetString()!.ShouldBe(
            $"Unknown query parameter '{unknown}': {method} {path[..path.IndexOf('?', StringComparison.Ordinal)]} takes {takes} (GET /openapi/v1.json describes each).");
    }

    [Fact]
    public async Task A_submit_with_a_misspelt_wait_is_refused_before_anything_is_queued_and_v2_says_it_in_its_own_shape()
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        var (events, keys) = await WrittenAsync(client);

        using var v1 = await client.PostAsync("/v1/jobs?wiat=5s", new StringContent(Job + "}", Encoding.UTF8, "application/json"));
        v1.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await v1.Content.ReadAsStringAsync()).ShouldContain("Unknown query parameter 'wiat'");

        using var v2 = await client.PostAsync("/v2/models/mlp-test/infer?timeout=5",
            new StringContent("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}""", Encoding.UTF8, "application/json"));
        v2.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        var error = (await v2.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString();
        error.ShouldBe("timeout: Unknown query parameter 'timeout': POST /v2/models/mlp-test/infer takes wait (GET /openapi/v1.json describes each).");

        (await WrittenAsync(client)).ShouldBe((events, keys), "nothing was written");
    }

    [Fact]
    public async Task A_long_unknown_query_parameter_is_named_cut_short_everywhere()
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        var name = new string('A', 5000);

        // A 5,000-character name came back in full as the key of 'errors' (and twice on /v1/batches).
        foreach (var (method, path) in new[] { ("GET", $"/v1/jobs?{name}=1"), ("POST", $"/v1/batches?{name}=1") })
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (method == "POST")
            {
                request.Content = new StringContent("{}\n", Encoding.UTF8, "application/jsonl");
            }

            using var response = await client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();

            ((int)response.StatusCode).ShouldBeInRange(400, 422, path[..20]);
            text.Length.ShouldBeLessThan(1000, path[..20]);
            var errors = JsonDocument.Parse(text).RootElement.GetProperty("errors");
            errors.EnumerateObject().ShouldAllBe(e => e.Name.Length <= 101);
        }
    }

    [Fact]
    public async Task Every_query_parameter_the_api_description_lists_is_taken_by_its_endpoint()
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        var document = await client.GetFromJsonAsync<JsonElement>("/openapi/v1.json");

        var checkedParameters = 0;
        var refused = new List<string>();
        foreach (var path in document.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject().Where(o => o.Value.TryGetProperty("parameters", out _)))
            {
                var names = operation.Value.GetProperty("parameters").EnumerateArray()
                    .Where(p => p.GetProperty("in").GetString() == "query").Select(p => p.GetProperty("name").GetString()!).ToList();
                if (names.Count == 0)
                {
                    continue;
                }

                // Values of no particular form: the endpoint may refuse them, but not as unknown names.
                var url = path.Name.Replace("{id}", Guid.Empty.ToString(), StringComparison.Ordinal).Replace("{model}", "mlp-test", StringComparison.Ordinal)
                    .Replace("{version}", "1", StringComparison.Ordinal) + "?" + string.Join("&", names.Select(n => $"{n}=x"));
                using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(operation.Name.ToUpperInvariant()), url));
                var text = await response.Content.ReadAsStringAsync();
                if (text.Contains("Unknown query parameter", StringComparison.Ordinal))
                {
                    refused.Add($"{operation.Name.ToUpperInvariant()} {url}: {text}");
                }

                checkedParameters += names.Count;
            }
        }

        refused.ShouldBeEmpty();
        checkedParameters.ShouldBeGreaterThan(30);
    }
}
