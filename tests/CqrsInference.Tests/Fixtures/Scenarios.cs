using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Fixtures;

public sealed record SubmittedJob(HttpStatusCode Status, Guid Id, JsonElement Body, string? Location);

/// <summary>Scenario steps written once, read as sentences in the tests.</summary>
public static class Scenarios
{
    public static string MlpJob(float[] x, string? metadata = null, string? timeout = null) =>
        $$"""{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[{{string.Join(",", x.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)))}}]}]{{(metadata is null ? "" : $",\"metadata\":{metadata}")}}{{(timeout is null ? "" : $",\"timeout\":\"{timeout}\"")}}}""";

    public static async Task<SubmittedJob> SubmitAsync(this HttpClient client, string json, string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/jobs") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var id = body.TryGetProperty("id", out var idElement) ? idElement.GetGuid() : Guid.Empty;
        return new SubmittedJob(response.StatusCode, id, body, response.Headers.Location?.ToString());
    }

    /// <summary>An mlp-test job on the interactive path (<c>"mode":"interactive"</c>), the caller waiting at most <paramref name="wait"/>.</summary>
    public static async Task<SubmittedJob> InferAsync(this HttpClient client, float[] x, string wait = "30s", string? metadata = null, string? idempotencyKey = null)
    {
        var json = MlpJob(x, metadata)[..^1] + ",\"mode\":\"interactive\"}";
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/jobs?wait={wait}") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return new SubmittedJob(response.StatusCode, body.TryGetProperty("id", out var id) ? id.GetGuid() : Guid.Empty, body, response.Headers.Location?.ToString());
    }

    /// <summary>How many of the job's recorded events are submissions and how many are endings.</summary>
    public static async Task<(int Submitted, int Ended)> RecordedCountsAsync(this HttpClient client, Guid id)
    {
        return RecordedCounts(await client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}/events"));
    }

    /// <summary>How many of the events (a <c>/v1/jobs/{id}/events</c> answer) are submissions and how many are endings.</summary>
    public static (int Submitted, int Ended) RecordedCounts(JsonElement events)
    {
        var types = events.EnumerateArray().Select(e => e.GetProperty("type").GetString()).ToList();
        return (types.Count(t => t == "v1.job_submitted"), types.Count(t => t is "v1.job_succeeded" or "v1.job_failed" or "v1.job_expired" or "v1.job_cancelled"));
    }

    public static async Task<JsonElement> GetJobAsync(this HttpClient client, Guid id) =>
        await client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}");

    public static Task<JsonElement> WaitForStatusAsync(this HttpClient client, Guid id, string status, TimeSpan? timeout = null) =>
        Retry.Until(
            $"job {id} to be {status}",
            async () =>
            {
                using var response = await client.GetAsync($"/v1/jobs/{id}");
                return response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonElement>() : default;
            },
            job => job.ValueKind == JsonValueKind.Object && job.GetProperty("status").GetString() == status,
            timeout);

    public static float[] Floats(this JsonElement tensor) =>
        tensor.GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray();
}
