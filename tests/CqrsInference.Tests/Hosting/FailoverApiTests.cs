using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;

namespace CqrsInference.Tests.Hosting;

/// <summary>A failover API with failover configured on one nats-server (no super-cluster).</summary>
public sealed class PipelineWithFailoverConfigured : PipelineWithAllRoles
{
    protected override string Roles => "api";

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Submit:Region"] = "west",
        ["Failover:StandbyRegions:0"] = "east",
        ["Failover:StandbyRegions:1"] = "west",
    };
}

/// <summary>
/// <c>POST /v1/admin/failover</c>'s refusals, each a specific 4xx (the takeover itself:
/// <see cref="RegionFailoverPipelineTests"/>).
/// </summary>
public sealed class FailoverApiTests(PipelineWithFailoverConfigured pipeline) : IClassFixture<PipelineWithFailoverConfigured>
{
    [Theory]
    [InlineData("""{}""", "Name the lost region")]
    [InlineData("""{"lostRegion":"no such/region"}""", "Name the lost region")]
    [InlineData("""{"lostRegion":"south"}""", "not known")]
    [InlineData("""{"lostRegion":"west"}""", "own")]
    public async Task A_takeover_of_no_known_other_region_is_refused_with_422(string body, string says)
    {
        var answer = await PostAsync(pipeline.Operator, body);

        answer.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        answer.Body.GetProperty("errors").GetProperty("lostRegion")[0].GetString()!.ShouldContain(says);
    }

    [Fact]
    public async Task A_takeover_while_the_logs_servers_answer_is_refused_with_409()
    {
        var answer = await PostAsync(pipeline.Operator, """{"lostRegion":"east"}""");

        answer.Status.ShouldBe(HttpStatusCode.Conflict);
        answer.Body.GetProperty("title").GetString().ShouldBe("Not a super-cluster");
    }

    [Fact]
    public async Task Only_the_operator_may_take_over()
    {
        var answer = await PostAsync(pipeline.Client, """{"lostRegion":"east"}""");

        answer.Status.ShouldBeOneOf(HttpStatusCode.Unauthorized, HttpStatusCode.Forbidden);
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(HttpClient client, string body)
    {
        using var response = await client.PostAsync("/v1/admin/failover", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length > 0 ? JsonSerializer.Deserialize<JsonElement>(text) : default);
    }
}
