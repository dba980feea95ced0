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
        var job = await pipeline.Client.GetV2Async(answer.Location);
        job.Body.GetProperty("status").GetString().ShouldBe("queued");
    }

    [Fact]
    public async Task A_wait_that_is_no_duration_is_400()
    {
        var answer = await pipeline.Client.InferAsync("mlp-test", V2Scenarios.MlpRequest([1, 2, 3, 4]), query: "?wait=forever");

        answer.Status.ShouldBe(HttpStatusCode.BadRequest);
        answer.Error().ShouldContain("wait");
    }
}
