using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace CqrsInference.Cli;

/// <summary>The CqrsInference HTTP API, as the CLI uses it.</summary>
internal sealed class ApiClient : IDisposable
{
    private readonly HttpClient _http;

    public ApiClient(string url, string? key)
    {
        _http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(2) };
        if (!string.IsNullOrEmpty(key))
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
    }

    public async Task<(int Status, JsonElement Body)> SubmitAsync(string json, TimeSpan wait, CancellationToken ct)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await _http.PostAsync($"/v1/jobs?wait={(int)wait.TotalSeconds}s", content, ct);
        return ((int)response.StatusCode, await ReadAsync(response, ct));
    }

    public async Task<(int Status, JsonElement Body)> GetAsync(string path, CancellationToken ct)
    {
        using var response = await _http.GetAsync(path, ct);
        return ((int)response.StatusCode, await ReadAsync(response, ct));
    }

    public async Task<Stream> StreamAsync(string path, CancellationToken ct)
    {
        var response = await _http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new CliException($"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        }

        return await response.Content.ReadAsStreamAsync(ct);
    }

    public void Dispose() => _http.Dispose();

    private static async Task<JsonElement> ReadAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var text = await response.Content.ReadAsStringAsync(ct);
        try
        {
            return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
            return JsonDocument.Parse(JsonSerializer.Serialize(new { detail = text })).RootElement.Clone();
        }
    }
}

/// <summary>A failure to tell the user in one line (no stack trace).</summary>
internal sealed class CliException(string message) : Exception(message);
