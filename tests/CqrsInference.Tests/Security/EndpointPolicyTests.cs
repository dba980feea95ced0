using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using CqrsInference.Tests.OpenApi;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace CqrsInference.Tests.Security;

/// <summary>
/// Every endpoint of the application, from its own endpoint list, called by every kind of caller:
/// no key, a wrong key, each role of tenant alfa, the whole of tenant bravo, and the operator.
/// Each gets what its policy says, nothing reaches a 5xx, no answer to tenant alfa holds a trace
/// of tenant bravo, and the OpenAPI document declares every status and content type answered.
/// </summary>
public sealed class EndpointPolicyTests(PipelineRequiringKeys pipeline) : IClassFixture<PipelineRequiringKeys>
{
    /// <summary>The roles each policy admits (the operator holds every role); restated here as the specification.</summary>
    private static readonly Dictionary<string, string[]> Admits = new()
    {
        ["submit"] = ["submit"],
        ["read"] = ["read", "auditor"],
        ["analyst"] = ["analyst"],
        ["auditor"] = ["auditor"],
        ["tenant-admin"] = ["admin"],
        ["operator"] = [],
        ["any-caller"] = ["submit", "read", "analyst", "auditor", "admin"],
    };

    private static readonly string[] TenantRoles = ["submit", "read", "analyst", "auditor", "admin"];

    [Fact]
    public void Every_endpoint_declares_its_policy_or_is_explicitly_anonymous()
    {
        var undeclared = Endpoints()
            .Where(e => e.Metadata.GetMetadata<IAllowAnonymous>() is null && Policy(e) is null)
            .Select(e => $"{Methods(e)} {e.RoutePattern.RawText}")
            .ToList();

        undeclared.ShouldBeEmpty();
        Endpoints().Count.ShouldBeGreaterThan(25, "the endpoint list was read");
    }

    [Fact]
    public async Task Every_endpoint_answers_every_caller_as_its_policy_says_and_never_shows_another_tenant()
    {
        var document = await ApiDocument.LoadAsync(pipeline.ClientWith(null));
        var bravo = await BravoAsync();
        var callers = new List<(string Name, string[] Roles, HttpClient Client)>
        {
            ("no key", [], pipeline.ClientWith(null)),
            ("a wrong key", [], pipeline.ClientWith("cqrsi_000000000000_wrong")),
        };
        foreach (var role in TenantRoles)
        {
            callers.Add(($"alfa {role}", [role], pipeline.ClientWith(await pipeline.CreateKeyAsync("alfa", role))));
        }

        var failures = new List<string>();
        foreach (var endpoint in Endpoints())
        {
            foreach (var method in Methods(endpoint).Split(','))
            {
                foreach (var (name, roles, client) in callers)
                {
                    var (status, body, asked, mediaType) = await CallAsync(client, method, endpoint, bravo);
                    var expected = Expected(endpoint, roles, authenticated: roles.Length > 0);
                    var what = $"{method} {endpoint.RoutePattern.RawText} as {name}: {status}";
                    if (status >= 500 || !expected(status))
                    {
                        failures.Add($"{what} {Excerpt(body)}");
                    }

                    if (Undeclared(document, endpoint, status, mediaType) is { } undeclared)
                    {
                        failures.Add($"{what}: {undeclared}");
                    }

                    // What the caller asked for may be echoed ("job … not found"); nothing else of bravo's.
                    if (bravo.Traces.FirstOrDefault(t => !asked.Contains(t, StringComparison.OrdinalIgnoreCase) && body.Contains(t, StringComparison.OrdinalIgnoreCase)) is { } trace)
                    {
                        failures.Add($"{what} shows tenant bravo's '{trace}'");
                    }
                }
            }
        }

        // The operator last: it may revoke and replay.
        foreach (var endpoint in Endpoints())
        {
            foreach (var method in Methods(endpoint).Split(','))
            {
                var (status, body, _, mediaType) = await CallAsync(pipeline.ClientWith(PipelineRequiringKeys.AdminKey), method, endpoint, bravo);
                if (status is >= 500 or 401 or 403)
                {
                    failures.Add($"{method} {endpoint.RoutePattern.RawText} as the operator: {status} {Excerpt(body)}");
                }

                if (Undeclared(document, endpoint, status, mediaType) is { } undeclared)
                {
                    failures.Add($"{method} {endpoint.RoutePattern.RawText} as the operator: {undeclared}");
                }
            }
        }

        failures.ShouldBeEmpty();
    }

    private sealed record Bravo(Guid Job, string Key, string KeyId, IReadOnlyList<string> Traces);

    /// <summary>Tenant bravo's job (recorded), a key of its own and a key to be revoked.</summary>
    private async Task<Bravo> BravoAsync()
    {
        using var client = pipeline.ClientWith(await pipeline.CreateKeyAsync("bravo", TenantRoles));
        var job = await client.SubmitAsync(Scenarios.MlpJob([7, 7, 7, 7], """{"owner":"bravo-secret-metadata"}"""));
        await client.WaitForStatusAsync(job.Id, "succeeded");
        var keys = await client.GetFromJsonAsync<JsonElement>("/v1/admin/keys");
        var keyId = keys[0].GetProperty("id").GetString()!;
        return new Bravo(job.Id, "", keyId, [job.Id.ToString(), job.Id.ToString("N"), "bravo", keyId]);
    }

    private static Func<int, bool> Expected(RouteEndpoint endpoint, string[] roles, bool authenticated)
    {
        if (endpoint.Metadata.GetMetadata<IAllowAnonymous>() is not null)
        {
            return status => status < 400 || status == 404;
        }

        if (!authenticated)
        {
            return status => status == 401;
        }

        var admitted = roles.Intersect(Admits[Policy(endpoint)!]).Any();

        // Admitted: whatever the endpoint answers about tenant bravo's things (404 for its job,
        // 403 for its keys), but never "who are you".
        return admitted ? status => status != 401 : status => status == 403;
    }

    /// <summary>What of this answer the OpenAPI document does not declare for the endpoint's operation, if anything.</summary>
    private static string? Undeclared(ApiDocument document, RouteEndpoint endpoint, int status, string? mediaType)
    {
        if (endpoint.Metadata.GetMetadata<IEndpointNameMetadata>() is not { } name
            || endpoint.Metadata.GetMetadata<IExcludeFromDescriptionMetadata>() is { ExcludeFromDescription: true })
        {
            return null;
        }

        var operation = document.Operation(name.EndpointName);
        if (!operation.Statuses.Contains(status))
        {
            return $"{status} is not in the OpenAPI document ({string.Join(", ", operation.Statuses)})";
        }

        return mediaType is null || operation.ContentTypes(status).Contains(mediaType) ? null : $"{mediaType} is not declared for {status} in the OpenAPI document";
    }

    private static async Task<(int Status, string Body, string Asked, string? MediaType)> CallAsync(HttpClient client, string method, RouteEndpoint endpoint, Bravo bravo)
    {
        var path = endpoint.RoutePattern.RawText!
            .Replace("{id:guid}", bravo.Job.ToString(), StringComparison.Ordinal)
            .Replace("{id}", bravo.KeyId, StringComparison.Ordinal);
        path = System.Text.RegularExpressions.Regex.Replace(path, @"\{[^}]*\}", "x");
        path += path switch
        {
            "/v1/analytics/usage" => "?groupBy=tenant,model",
            "/v1/admin/keys" when method == "GET" => "?tenant=bravo",
            "/v1/admin/webhook-key" => "?tenant=bravo",
            _ => "",
        };
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method is "POST" or "PUT")
        {
            request.Content = new StringContent(Body(path), Encoding.UTF8, "application/json");
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        var body = response.Content.Headers.ContentType?.MediaType == "text/event-stream"
            ? await FirstEventAsync(response, timeout.Token)
            : await response.Content.ReadAsStringAsync(timeout.Token);
        return ((int)response.StatusCode, body, path + (request.Content is null ? "" : Body(path)), response.Content.Headers.ContentType?.MediaType);
    }

    /// <summary>An event stream's first event: the dashboard's live stream does not end by itself.</summary>
    private static async Task<string> FirstEventAsync(HttpResponseMessage response, CancellationToken ct)
    {
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        var lines = new StringBuilder();
        while (await reader.ReadLineAsync(ct) is { } line && (line.Length > 0 || lines.Length == 0))
        {
            lines.AppendLine(line);
        }

        return lines.ToString();
    }

    private static string Body(string path) => path switch
    {
        "/v1/jobs" => Scenarios.MlpJob([1, 2, 3, 4]),
        "/v1/jobs:bulk" => $$"""{"jobs":[{{Scenarios.MlpJob([1, 2, 3, 4])}}]}""",
        "/v1/admin/keys" => """{"tenant":"bravo","roles":["read"]}""",
        _ => "{}",
    };

    private List<RouteEndpoint> Endpoints() => pipeline.Host.Services.GetRequiredService<EndpointDataSource>().Endpoints
        .OfType<RouteEndpoint>()
        .Where(e => e.Metadata.GetMetadata<HttpMethodMetadata>() is not null)
        .ToList();

    private static string? Policy(RouteEndpoint endpoint) =>
        endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>().Select(a => a.Policy).LastOrDefault(p => p is not null);

    private static string Methods(RouteEndpoint endpoint) => string.Join(",", endpoint.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods);

    private static string Excerpt(string body) => body.Length > 200 ? body[..200] : body;
}
