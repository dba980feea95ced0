using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace CqrsInference.Tests.Inference;

/// <summary>An Open Inference Protocol answer: the status, the body, and the headers a caller acts on.</summary>
public sealed record V2Answer(HttpStatusCode Status, JsonElement Body, string? ContentType, string? RetryAfter, string? Location)
{
    /// <summary>The protocol's error shape: exactly one field, a non-empty "error" string, as application/json.</summary>
    public string Error()
    {
        ContentType.ShouldBe("application/json", $"a /v2 error is no problem+json: {Body}");
        Body.EnumerateObject().Select(p => p.Name).ShouldBe(["error"], Body.ToString());
        var error = Body.GetProperty("error").GetString();
        error.ShouldNotBeNullOrWhiteSpace();
        return error;
    }
}

/// <summary>Open Inference Protocol steps, read as sentences in the tests.</summary>
public static class V2Scenarios
{
    public static string Floats(params float[] values) => string.Join(",", values.Select(v => v.ToString(CultureInfo.InvariantCulture)));

    /// <summary>A v2 request for mlp-test: x = <paramref name="x"/>, with whatever else the test adds.</summary>
    public static string MlpRequest(float[] x, string extra = "") =>
        $$"""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[{{Floats(x)}}]}]{{extra}}}""";

    public static Task<V2Answer> InferAsync(this HttpClient client, string model, string json, string? idempotencyKey = null, string? query = null) =>
        client.PostV2Async($"/v2/models/{model}/infer{query}", json, idempotencyKey);

    public static async Task<V2Answer> PostV2Async(this HttpClient client, string path, string body, string? idempotencyKey = null, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, contentType) };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        return await SendV2Async(client, request);
    }

    public static Task<V2Answer> GetV2Async(this HttpClient client, string path) => SendV2Async(client, new HttpRequestMessage(HttpMethod.Get, path));

    public static async Task<V2Answer> SendV2Async(this HttpClient client, HttpRequestMessage request)
    {
        using (request)
        {
            using var response = await client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
            return new V2Answer(response.StatusCode, body, response.Content.Headers.ContentType?.MediaType,
                response.Headers.RetryAfter?.ToString(), response.Headers.Location?.ToString());
        }
    }

    public static Guid JobId(this V2Answer answer) => answer.Body.GetProperty("parameters").GetProperty("job_id").GetGuid();

    public static Task<JsonElement> GetJsonAsync(this HttpClient client, string path) => client.GetFromJsonAsync<JsonElement>(path);
}
