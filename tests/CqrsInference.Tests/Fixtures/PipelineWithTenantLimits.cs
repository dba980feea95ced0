using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Fixtures;

public sealed class PipelineWithTenantLimits : PipelineWithAllRoles
{
    protected override string Roles => "api,projections";

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["CQRSI_API_KEY"] = PipelineRequiringKeys.AdminKey,
        ["Api:AllowAnonymous"] = "false",
        ["Api:RateLimit:PermitsPerSecond"] = "0.5",
        ["Api:RateLimit:Burst"] = "3",
        ["Api:RateLimit:Tenants:roomy:PermitsPerSecond"] = "1000",
        ["Api:RateLimit:Tenants:roomy:Burst"] = "1000",
        ["Submit:MaxQueueDepth"] = "20",
        ["Api:Quota:Tenants:tiny"] = "2",
        ["Api:RateLimit:Tenants:small:PermitsPerSecond"] = "1000",
        ["Api:RateLimit:Tenants:small:Burst"] = "1000",
        ["Api:Quota:Tenants:small"] = "3",
        ["Api:Streams:PerTenant"] = "2",
        ["Api:Streams:Tenants:roomy"] = "3",
    };

    public HttpClient As(string key)
    {
        var client = Host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", key);
        return client;
    }

    public async Task<HttpClient> NewTenantAsync(string tenant)
    {
        using var admin = As(PipelineRequiringKeys.AdminKey);
        using var created = await admin.PostAsJsonAsync("/v1/admin/keys", new { tenant, roles = new[] { "submit", "read" } });
        return As((await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!);
    }
}
