using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace CqrsInference.Cli;

/// <summary>The CqrsInference HTTP API, as the CLI uses it: an answer of 400 or more is an <see cref="ApiException"/>.</summary>
internal sealed class ApiClient : IDisposable
{
    private readonly HttpClient _http;

    public ApiClient(string url, string? key)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var address) || address.Scheme is not ("http" or "https"))
        {
            throw new CliException($"--url must be an absolute http or https address, not '{url}'.");
        }

        if (address.AbsolutePath != "/" || address.Query.Length > 0)
        {
            // Every call names its path from the root: a prefix would be dropped without a word.
            throw new CliException($"--url must be the API's root address, without a path or query (such as http://127.0.0.1:8080), not '{url}'.");
        }

        if (key is not null && key.Any(c => c is < '!' or > '~'))
        {
            // A key is printable ASCII; one read from a file with its newline would fail as "no answer".
            throw new CliException("--key (or CQRSI_API_KEY) must be the key as created: printable ASCII, no spaces or line ends.");
        }

        _http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
        if (!string.IsNullOrEmpty(key))
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
    }

    public Uri Address => _http.BaseAddress!;

    /// <summary>
    /// One submit, waiting at most <paramref name="wait"/> for the job, sent with <paramref name="idempotencyKey"/>
    /// when there is one: the status, body and <c>Retry-After</c> whatever they are (each job of a file has its own outcome).
    /// </summary>
    public async Task<SubmitAnswer> SubmitAsync(string json, string? idempotencyKey, TimeSpan wait, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/jobs?wait={(int)wait.TotalSeconds}s")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        using var response = await _http.SendAsync(request, ct);
        return await AnswerAsync(response, ct);
    }

    private static async Task<SubmitAnswer> AnswerAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var retryAfter = response.Headers.RetryAfter is { } after
            ? after.Delta ?? (after.Date is { } date ? date - DateTimeOffset.UtcNow : null)
            : null;
        return new SubmitAnswer((int)response.StatusCode, await ReadAsync(response, ct), retryAfter);
    }

    public Task<JsonElement> GetAsync(string path, CancellationToken ct) => SendAsync(HttpMethod.Get, path, null, ct);

    /// <summary>The answer's JSON (<c>default</c> for an empty one, such as 204).</summary>
    public async Task<JsonElement> SendAsync(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body, JsonSerializerOptions.Web), Encoding.UTF8, "application/json");
        }

        using var response = await _http.SendAsync(request, ct);
        var json = await ReadAsync(response, ct);
        return response.IsSuccessStatusCode ? json : throw new ApiException((int)response.StatusCode, json);
    }

    /// <summary>
    /// Posts a file as it is (a batch's JSONL), opened by <paramref name="open"/> for each try, with
    /// <paramref name="contentType"/> and <paramref name="idempotencyKey"/>: the status, body and
    /// <c>Retry-After</c> whatever they are.
    /// </summary>
    public async Task<SubmitAnswer> PostFileAsync(string path, Func<Stream> open, string contentType, string idempotencyKey, CancellationToken ct)
    {
        await using var file = open();
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StreamContent(file) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        request.Headers.Add("Idempotency-Key", idempotencyKey);
        using var response = await _http.SendAsync(request, ct);
        return await AnswerAsync(response, ct);
    }

    /// <summary>A plain response read as it arrives (a batch's JSONL results); the caller disposes it.</summary>
    public async Task<Stream> ReadStreamAsync(string path, CancellationToken ct)
    {
        var response = await _http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!response.IsSuccessStatusCode)
        {
            using (response)
            {
                throw new ApiException((int)response.StatusCode, await ReadAsync(response, ct));
            }
        }

        return await response.Content.ReadAsStreamAsync(ct);
    }

    /// <summary>A response read as it arrives (Server-Sent Events); the caller disposes it.</summary>
    public async Task<Stream> StreamAsync(string path, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!response.IsSuccessStatusCode)
        {
            using (response)
            {
                throw new ApiException((int)response.StatusCode, await ReadAsync(response, ct));
            }
        }

        return await response.Content.ReadAsStreamAsync(ct);
    }

    public void Dispose() => _http.Dispose();

    /// <summary>
    /// The body as JSON. A refusal whose body is not JSON becomes <c>{"detail": text}</c>, so that
    /// errors still say something; a success whose body is not JSON (a proxy's login page, say) is no
    /// answer of the API's, and fails the command (exit 2) instead of printing as if it were one.
    /// </summary>
    private static async Task<JsonElement> ReadAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var text = await response.Content.ReadAsStringAsync(ct);
        try
        {
            return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException) when (!response.IsSuccessStatusCode)
        {
            return JsonSerializer.SerializeToElement(new { detail = text });
        }
        catch (JsonException e)
        {
            throw new JsonException($"a {(int)response.StatusCode} answer that is not JSON ({response.Content.Headers.ContentType?.MediaType ?? "no content type"}): {e.Message}", e);
        }
    }
}

/// <summary>A submit's answer: its HTTP status, its body (the job, or problem details) and how long its <c>Retry-After</c> asks to wait.</summary>
internal sealed record SubmitAnswer(int Status, JsonElement Body, TimeSpan? RetryAfter);

/// <summary>A failure to tell the user in one line (no stack trace); the command exits <see cref="ExitCodes.UsageOrTransport"/>.</summary>
internal class CliException(string message) : Exception(message);

/// <summary>The API refused a call: its status and its problem details (RFC 9457).</summary>
internal sealed class ApiException(int status, JsonElement problem) : CliException(Describe(status, problem))
{
    public int Status => status;

    public JsonElement Problem => problem;

    /// <summary>"404 Job not found: There is no job …", with each invalid field of a validation problem.</summary>
    public static string Describe(int status, JsonElement problem)
    {
        var text = new StringBuilder().Append(status);
        if (problem.ValueKind != JsonValueKind.Object)
        {
            return text.ToString();
        }

        if (Text(problem, "title") is { } title)
        {
            text.Append(' ').Append(title);
        }

        if (Text(problem, "detail") is { } detail)
        {
            text.Append(": ").Append(detail);
        }

        if (problem.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Object)
        {
            foreach (var field in errors.EnumerateObject())
            {
                text.Append("; ").Append(field.Name).Append(": ").Append(field.Value.ValueKind == JsonValueKind.Array
                    ? string.Join(" ", field.Value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() : e.GetRawText()))
                    : field.Value.GetRawText());
            }
        }

        return text.ToString();
    }

    private static string? Text(JsonElement body, string name) =>
        body.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
