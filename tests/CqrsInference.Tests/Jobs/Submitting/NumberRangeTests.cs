using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Submitting;

/// <summary>
/// Numbers a model's datatype cannot hold are refused at submit; numbers a model turns into NaN or
/// ±Infinity end the job at once.
/// </summary>
public sealed class NumberRangeTests(PipelineWithAllRoles pipeline) : IClassFixture<PipelineWithAllRoles>
{
    private readonly HttpClient _client = pipeline.Client;

    private static string MlpJob(string data) =>
        $$"""{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":{{data}}}]}""";

    [Fact]
    public async Task FP32_value_beyond_its_range_is_refused_naming_the_element_and_nothing_is_stored()
    {
        var before = await EventLogSizeAsync();
        var key = $"range-{Guid.NewGuid():N}";

        var refused = await _client.SubmitAsync(MlpJob("[1,2,3,3.5e38]"), key);

        refused.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        refused.Body.GetProperty("errors").EnumerateObject().Select(e => e.Name).ShouldBe(["inputs[0].data[3]"]);
        refused.Body.GetProperty("errors").GetProperty("inputs[0].data[3]")[0].GetString()
            .ShouldBe("Element 3 of input 'x' is 3.5e38, outside FP32's range (±3.4028235E+38).");
        refused.Location.ShouldBeNull();
        (await EventLogSizeAsync()).ShouldBe(before);
        using var lookup = await _client.GetAsync($"/v1/jobs/{JobIds.For("default", key, DateTimeOffset.UtcNow)}");
        lookup.StatusCode.ShouldBe(HttpStatusCode.NotFound);

        // The key was not spent on the refused body: the corrected one is accepted under it.
        (await _client.SubmitAsync(MlpJob("[1,2,3,3.4e38]"), key)).Status.ShouldBe(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task Bulk_submit_with_one_value_beyond_FP32_is_refused_naming_the_job_and_element()
    {
        var before = await EventLogSizeAsync();
        var body = $$"""{"jobs":[{{MlpJob("[1,2,3,4]")}},{{MlpJob("[-1e39,2,3,4]")}}]}""";

        using var response = await _client.PostAsync("/v1/jobs:bulk", new StringContent(body, Encoding.UTF8, "application/json"));

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        var errors = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors");
        errors.EnumerateObject().Select(e => e.Name).ShouldBe(["jobs[1].inputs[0].data[0]"]);
        errors.GetProperty("jobs[1].inputs[0].data[0]")[0].GetString()!.ShouldContain("-1e39, outside FP32's range");
        (await EventLogSizeAsync()).ShouldBe(before);
    }

    [Theory]
    [InlineData("[1,2,3,NaN]")]
    [InlineData("[1,2,3,Infinity]")]
    [InlineData("[1,2,3,-Infinity]")]
    public async Task NaN_and_Infinity_literals_are_not_json_and_get_400(string data)
    {
        var job = await _client.SubmitAsync(MlpJob(data));

        job.Status.ShouldBe(HttpStatusCode.BadRequest);
        job.Body.GetProperty("detail").GetString()!.ShouldContain("not valid JSON");
    }

    [Fact]
    public async Task NaN_as_a_string_is_refused_as_no_number()
    {
        var job = await _client.SubmitAsync(MlpJob("""[1,"NaN",3,4]"""));

        job.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        job.Body.GetProperty("errors").GetProperty("inputs[0].data[1]")[0].GetString()
            .ShouldBe("Element 1 of input 'x' must be a number for FP32, not a string.");
    }

    [Fact]
    public async Task Job_whose_model_output_overflows_fails_after_one_attempt_with_non_finite_output()
    {
        // Every element is within FP32, but the MLP's hidden layer sums them past float.MaxValue.
        var job = await _client.SubmitAsync(MlpJob("[3.4e38,3.4e38,3.4e38,3.4e38]"));
        job.Status.ShouldBe(HttpStatusCode.Accepted);

        var failed = await _client.WaitForStatusAsync(job.Id, "failed");

        failed.GetProperty("attempts").GetInt32().ShouldBe(1);
        var error = failed.GetProperty("error");
        error.GetProperty("code").GetString().ShouldBe("non_finite_output");
        error.GetProperty("deadLettered").GetBoolean().ShouldBeFalse();
        var message = error.GetProperty("message").GetString()!;
        message.ShouldStartWith("Output 'y' holds ");
        message.ShouldContain("non-finite");
        message.ShouldNotContain("positive and negative infinity", Case.Insensitive);
        message.ShouldNotContain("valid JSON");
        message.ShouldNotContain("attempts");

        // No attempt failed before the failure: it was never retried.
        var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}/events");
        events.EnumerateArray().Select(e => e.GetProperty("type").GetString()).ShouldBe(["v1.job_submitted", "v1.job_failed"]);
    }

    private async Task<long> EventLogSizeAsync()
    {
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;
        return await JobMessages.CountAsync(js, NatsTopology.EventsStream);
    }
}
