using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Fixtures;

/// <summary>
/// The whole pipeline with webhooks on. Webhooks go to public https endpoints only, so the tests'
/// receivers on 127.0.0.1 need the allow-list: a few ports of 127.0.0.1 are on it
/// (<c>Webhooks:AllowedInsecureHosts</c>), handed out by <see cref="AllowedPort"/>; every other
/// port of 127.0.0.1 is refused like any other loopback address.
/// </summary>
public class PipelineWithWebhooks : PipelineWithAllRoles
{
    public const string SigningKey = "test-webhook-signing-key";
    private readonly int[] _allowedPorts = DistinctFreePorts(8);
    private int _handedOut;

    /// <summary>A port of 127.0.0.1 on the allow-list that no other test of the fixture was given.</summary>
    public int AllowedPort() => _allowedPorts[Interlocked.Increment(ref _handedOut) - 1];

    /// <summary>A free port of 127.0.0.1 that is not on the allow-list.</summary>
    public int PortNotAllowed()
    {
        var port = NatsServerProcess.FreePort();
        return _allowedPorts.Contains(port) ? PortNotAllowed() : port;
    }

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>(
        _allowedPorts.Select((port, i) => KeyValuePair.Create($"Webhooks:AllowedInsecureHosts:{i}", (string?)$"127.0.0.1:{port}"))
            .Concat(MoreSettings))
    {
        ["Webhooks:SigningKey"] = SigningKey,

        // A test's failing endpoint is not called for minutes after it ends: 1 s, 2 s, then given up.
        ["Webhooks:MaxAttempts"] = "3",
    };

    protected virtual IEnumerable<KeyValuePair<string, string?>> MoreSettings => [];

    private static int[] DistinctFreePorts(int count)
    {
        var ports = new HashSet<int>();
        while (ports.Count < count)
        {
            ports.Add(NatsServerProcess.FreePort());
        }

        return [.. ports];
    }
}

/// <summary>
/// Webhooks with tenants (keys required) and small delivery limits: at most 4 calls in flight, 2
/// per tenant, each given 30 s before it counts as failed.
/// </summary>
public sealed class PipelineWithWebhookTenants : PipelineWithWebhooks
{
    public const string AdminKey = "test-admin-key";

    protected override IEnumerable<KeyValuePair<string, string?>> MoreSettings => new Dictionary<string, string?>
    {
        ["Api:AllowAnonymous"] = "false",
        ["CQRSI_API_KEY"] = AdminKey,
        ["Webhooks:MaxConcurrent"] = "4",
        ["Webhooks:MaxConcurrentPerTenant"] = "2",
        ["Webhooks:Timeout"] = "00:00:30",
    };

    public async Task<HttpClient> TenantAsync(string tenant)
    {
        using var admin = Host.CreateClient();
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var response = await admin.PostAsJsonAsync("/v1/admin/keys", new { tenant, name = tenant, roles = new[] { "submit", "read" } });
        response.StatusCode.ShouldBe(HttpStatusCode.Created);
        var client = Host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(
            "Bearer", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString());
        return client;
    }
}
