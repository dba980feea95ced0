using System.Net;
using CqrsInference.Tests.Fixtures;

namespace CqrsInference.Tests.Inference;

/// <summary>A v2 request whose job no processor takes: the protocol has no 202, so the caller is told where the job is.</summary>
public sealed class OpenInferenceProtocolWaitTests(PipelineWithoutProcessors pipeline) : IClassFixture<PipelineWithoutProcessors>
{
    [Fact]
    public async Task A_job_not_done_within_the_wait_is_503_with_retry_after_and_where_to_follow_it()
    {
        var answer = await pipeline.Client.InferAsync("mlp-test", V2Scenarios.MlpRequest([1, 2, 3, 4]), query: "?wait=500ms");

        answer.Status.ShouldBe(HttpStatusCode.ServiceUnavailable);
        answer.RetryAfter.ShouldNotBeNull();
        answer.Location.ShouldNotBeNull().ShouldStartWith("/v1/jobs/");
        var jobId = answer.Location["/v1/jobs/".Length..];
        answer.Error().ShouldContain(jobId);
        answer.Error().ShouldNotContain("Idempotency-Key", Case.Insensitive, "none was sent: a retry without one is another job");
        var job = await pipeline.Client.GetV2Async(answer.Location);
        job.Body.GetProperty("status").GetString().ShouldBe("queued");
    }

    [Fact]
    public async Task A_request_of_the_binary_tensor_extension_is_400_naming_it_not_read_as_json()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/mlp-test/infer") { Content = new StringContent(V2Scenarios.MlpRequest([1, 2, 3, 4]), System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Add("Inference-Header-Content-Length", "120");

        var answer = await V2Scenarios.SendV2Async(pipeline.Client, request);

        answer.Status.ShouldBe(HttpStatusCode.BadRequest);
        answer.Error().ShouldContain("binary tensor data extension");
    }

    [Fact]
    public async Task A_wait_that_is_no_duration_is_400()
    {
        var answer = await pipeline.Client.InferAsync("mlp-test", V2Scenarios.MlpRequest([1, 2, 3, 4]), query: "?wait=forever");

        answer.Status.ShouldBe(HttpStatusCode.BadRequest);
        answer.Error().ShouldContain("wait");
    }
}
