using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;
using Npgsql;

namespace CqrsInference.Tests.Fixtures;

public sealed class PipelineRequiringKeys : PipelineWithAllRoles
{
    public const string AdminKey = TestEnvironment.OperatorKey;

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Api:AllowAnonymous"] = "false",
        ["CQRSI_API_KEY"] = AdminKey,
    };

    public HttpClient ClientWith(string? key)
    {
        var client = Host.CreateClient();
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return client;
    }

    public async Task<string> CreateKeyAsync(string tenant, params string[] roles)
    {
        using var admin = ClientWith(AdminKey);
        using var response = await admin.PostAsJsonAsync("/v1/admin/keys", new { tenant, name = $"{tenant} test", roles });
        response.StatusCode.ShouldBe(HttpStatusCode.Created);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
    }
}
