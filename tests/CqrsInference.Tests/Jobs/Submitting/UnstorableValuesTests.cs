using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Api.Http;
using CqrsInference.Tests.Batches;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Inference;

namespace CqrsInference.Tests.Jobs.Submitting;

/// <summary>
/// Values JSON allows and the job's history (PostgreSQL jsonb) cannot store: the NUL character in
/// a string and numbers with more digits than PostgreSQL's numeric holds. Accepted, each became an
/// event the recorder could never store, and its partition's recording stopped behind it for good;
/// every way in refuses them, naming the value.
/// </summary>
public sealed class UnstorableValuesTests(PipelineWithAllRoles pipeline) : IClassFixture<PipelineWithAllRoles>
{
    private const string Nul = "\\u0000";
    private static readonly string LongFraction = "0." + new string('1', 20_000);
    private readonly HttpClient _client = pipeline.Client;

    private static string Job(string data = "[1,2,3,4]", string note = "fine") =>
        "{\"model\":\"mlp-test\",\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,4],\"data\":" + data + "}],\"metadata\":{\"note\":\"" + note + "\"}}";

    [Fact]
    public async Task A_submit_holding_NUL_or_an_overlong_number_is_refused_naming_the_value()
    {
        var nul = await PostAsync("/v1/jobs", Job(note: $"a{Nul}b"));
        var number = await PostAsync("/v1/jobs", Job(data: $"[1,2,{LongFraction},4]"));
        var bulk = await PostAsync("/v1/jobs:bulk", $$"""{"jobs":[{{Job()}},{{Job(note: Nul)}}]}""");

        Error(nul, "metadata.note").ShouldContain("U+0000");
        Error(number, "inputs[0].data[2]").ShouldContain("100 characters");
        Error(bulk, "jobs[1].metadata.note").ShouldContain("U+0000");
    }

    [Fact]
    public async Task A_number_with_a_floats_full_precision_is_accepted_and_recorded()
    {
        using var response = await _client.PostAsync("/v1/jobs", Json(Job(data: "[0.100000001490116119384765625,-1.5e-45,3.4028234663852886e+38,4]")));

        response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        await _client.WaitForStatusAsync(id, "succeeded");
        (await _client.RecordedCountsAsync(id)).ShouldBe((1, 1));
    }

    [Fact]
    public async Task A_batch_line_holding_NUL_is_refused_by_line_and_the_others_run()
    {
        var submitted = await _client.SubmitBatchAsync(BatchScenarios.File([BatchScenarios.Line(1), BatchScenarios.Line(2)[..^1] + $",\"metadata\":{{\"note\":\"{Nul}\"}}}}"]));

        submitted.Status.ShouldBe(HttpStatusCode.Accepted);
        var refused = submitted.Body.GetProperty("refused").EnumerateArray().Single();
        refused.GetProperty("line").GetInt32().ShouldBe(2);
        refused.GetProperty("errors").GetProperty("metadata.note")[0].GetString()!.ShouldContain("U+0000");
        var batch = await _client.WaitForBatchAsync(submitted.Id, BatchScenarios.Settled, "to settle");
        batch.Count("succeeded").ShouldBe(1);
    }

    [Fact]
    public async Task A_v2_infer_holding_NUL_is_refused_in_the_v2_error_shape()
    {
        var answer = await _client.InferAsync("mlp-test", V2Scenarios.MlpRequest([1, 2, 3, 4], $",\"parameters\":{{\"note\":\"{Nul}\"}}"));

        ((int)answer.Status).ShouldBeInRange(400, 499);
        answer.Body.GetProperty("error").GetString()!.ShouldContain("U+0000");
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("-0.5e-45", true)]
    [InlineData("1e1000", true)]
    [InlineData("1E+0001000", true)]
    [InlineData("-1e-1000", true)]
    [InlineData("1e1001", false)]
    [InlineData("1e-99999", false)]
    [InlineData("0e100000000000000000000", false)]
    public void A_number_is_storable_with_an_exponent_of_at_most_1000(string number, bool storable) =>
        StorableJson.IsStorableNumber(Encoding.UTF8.GetBytes(number)).ShouldBe(storable);

    [Fact]
    public void A_number_is_storable_up_to_100_characters()
    {
        StorableJson.IsStorableNumber(Encoding.UTF8.GetBytes("1." + new string('0', 98))).ShouldBeTrue();
        StorableJson.IsStorableNumber(Encoding.UTF8.GetBytes("1." + new string('0', 99))).ShouldBeFalse();
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(string path, string body)
    {
        using var response = await _client.PostAsync(path, Json(body));
        return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    /// <summary>The 422's message for <paramref name="field"/>.</summary>
    private static string Error((HttpStatusCode Status, JsonElement Body) answer, string field)
    {
        answer.Status.ShouldBe(HttpStatusCode.UnprocessableEntity, answer.Body.ToString());
        return answer.Body.GetProperty("errors").GetProperty(field)[0].GetString()!;
    }
}
