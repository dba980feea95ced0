using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Fixtures;

public sealed class PipelineWithTenantKeysAndNoProcessor : PipelineWithAllRoles
{
    public const string AdminKey = TestEnvironment.OperatorKey;

    protected override string Roles => "api,projections";

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Api:AllowAnonymous"] = "false",
        ["CQRSI_API_KEY"] = AdminKey,
    };

    public HttpClient Admin()
    {
        var admin = Host.CreateClient();
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        return admin;
    }

    public async Task<HttpClient> TenantAsync(string tenant)
    {
        using var admin = Admin();
        using var response = await admin.PostAsJsonAsync("/v1/admin/keys", new { tenant, name = tenant, roles = new[] { "submit", "read" } });
        response.StatusCode.ShouldBe(HttpStatusCode.Created);
        var client = Host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(
            "Bearer", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString());
        return client;
    }

    /// <summary>One processor with one slot and no batching: it runs the jobs one at a time, in the order it chose them.</summary>
    public PipelineHost StartSingleSlotProcessor()
    {
        var processor = new PipelineHost(Nats.Url, Host.Schema, "processor", new Dictionary<string, string?>
        {
            ["Processor:Models:0"] = "mlp-test",
            ["Processor:Slots"] = "1",
            ["Processor:MaxBatch"] = "1",
            ["Processor:FaultInjection"] = "true",
        });
        _ = processor.Server;
        return processor;
    }
}
