using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace CqrsInference.Tests.Fixtures;

/// <summary>
/// The whole pipeline with fault injection (three deliveries at most, short backoff: a poison job is
/// dead-lettered in a second) and at most <see cref="MaxRetries"/> retries per job.
/// </summary>
public sealed class PipelineWithFaultInjectionAndTwoRetries : PipelineWithAllRoles
{
    public const int MaxRetries = 2;

    protected override IReadOnlyDictionary<string, string?>? Settings => PipelineWithFaultInjection.Topology
        .Append(new("Retry:MaxRetries", MaxRetries.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        .ToDictionary(p => p.Key, p => (string?)p.Value);

    /// <summary>A client with a new key (submit, read, analyst) of a tenant of its own, so its usage is its own.</summary>
    public async Task<HttpClient> ClientOfNewTenantAsync(string prefix)
    {
        var tenant = $"{prefix}-{Guid.NewGuid():N}"[..24];
        using var response = await Operator.PostAsJsonAsync("/v1/admin/keys", new { tenant, name = "retry test", roles = new[] { "submit", "read", "analyst" } });
        response.StatusCode.ShouldBe(HttpStatusCode.Created);
        var client = Host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString());
        return client;
    }
}

/// <summary>Retry steps, read as sentences in the tests.</summary>
public static class RetryScenarios
{
    public static async Task<(HttpStatusCode Status, JsonElement Body)> RetryAsync(this HttpClient client, Guid id, string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/jobs/{id}:retry") { Content = new StringContent("", Encoding.UTF8) };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>The wire names of the job's recorded events, in order.</summary>
    public static async Task<List<string>> EventTypesAsync(this HttpClient client, Guid id) =>
        (await client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}/events")).EnumerateArray().Select(e => e.GetProperty("type").GetString()!).ToList();

    /// <summary>Waits until the job is in attempt series <paramref name="series"/> and has <paramref name="status"/>.</summary>
    public static Task<JsonElement> WaitForSeriesAsync(this HttpClient client, Guid id, int series, string status) =>
        Infrastructure.Retry.Until(
            $"job {id} to be {status} in series {series}",
            async () => await client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}"),
            job => job.GetProperty("series").GetInt32() == series && job.GetProperty("status").GetString() == status);
}
