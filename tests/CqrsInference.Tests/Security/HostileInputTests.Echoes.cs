using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;

namespace CqrsInference.Tests.Security;

/// <summary>A refusal names what the caller sent, cut short: a name can be as long as the body, and was echoed whole (twice).</summary>
public sealed partial class HostileInputTests
{
    [Theory]
    [InlineData("metadata key")]
    [InlineData("unknown field")]
    [InlineData("model")]
    [InlineData("region")]
    [InlineData("modelVersion")]
    public async Task A_huge_name_is_refused_naming_it_cut_short_not_echoed_whole(string what)
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        var huge = new string('k', 100_000);
        const string Inputs = "\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,4],\"data\":[1,2,3,4]}]";
        var body = what switch
        {
            "metadata key" => "{\"model\":\"mlp-test\"," + Inputs + ",\"metadata\":{\"" + huge + "\":\"v\"}}",
            "unknown field" => "{\"model\":\"mlp-test\"," + Inputs + ",\"" + huge + "\":1}",
            "model" => "{\"model\":\"" + huge + "\"," + Inputs + "}",
            "region" => "{\"model\":\"mlp-test\",\"region\":\"" + huge + "\"," + Inputs + "}",
            _ => "{\"model\":\"mlp-test\",\"modelVersion\":\"" + huge + "\"," + Inputs + "}",
        };

        using var response = await client.PostAsync("/v1/jobs", new StringContent(body, Encoding.UTF8, "application/json"));

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity, what);
        var answer = await response.Content.ReadAsStringAsync();
        answer.Length.ShouldBeLessThan(2_000, $"{what}: {answer[..Math.Min(300, answer.Length)]}");
        JsonDocument.Parse(answer).RootElement.GetProperty("errors").EnumerateObject().ShouldNotBeEmpty(what);
    }
}
