using CqrsInference.Client;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.OpenApi;

/// <summary>
/// The typed client NSwag generates at build from the committed OpenAPI document (src/Client), used
/// as an application would: submit, poll, read the events, and read a refusal as typed problem details.
/// </summary>
public sealed class GeneratedClientTests(PipelineWithAllRoles pipeline) : IClassFixture<PipelineWithAllRoles>
{
    private readonly CqrsInferenceClient _client = new(pipeline.Operator);

    [Fact]
    public async Task Generated_client_submits_polls_and_reads_events()
    {
        var job = MlpJob();
        job.Priority = SubmitJobRequestPriority.Batch;
        job.Mode = SubmitJobRequestMode.Queued;
        var submitted = await _client.SubmitJobAsync(job, idempotency_Key: Guid.NewGuid().ToString());
        submitted.Status.ShouldBe("queued");
        submitted.Model.ShouldBe("mlp-test");
        submitted.Priority.ShouldBe("batch", "the generated enum travels as the API's own word");

        var done = await Retry.Until("the job succeeded", () => _client.GetJobAsync(submitted.Id), j => j.Status == "succeeded");
        done.Outputs!.Single().Name.ShouldBe("y");
        done.Outputs!.Single().Shape.ShouldBe([1L, 3L]);
        done.Attempts.ShouldBe(1);

        var events = await _client.GetJobEventsAsync(submitted.Id);
        events.Select(e => e.Type).ShouldBe(["v1.job_submitted", "v1.job_succeeded"]);
        events.Select(e => e.Version).ShouldBe([1L, 2L]);

        (await _client.ListJobsAsync(model: "mlp-test", limit: 1000)).Jobs.ShouldContain(j => j.Id == submitted.Id);
    }

    [Fact]
    public async Task Generated_client_reads_refusals_as_typed_problem_details()
    {
        var job = MlpJob();
        job.Model = "no-such-model";
        var invalid = await Should.ThrowAsync<ApiException<HttpValidationProblemDetails>>(() => _client.SubmitJobAsync(job));
        invalid.StatusCode.ShouldBe(422);
        invalid.Result.Errors!.Keys.ShouldBe(["model"]);

        var missing = await Should.ThrowAsync<ApiException<ProblemDetails>>(() => _client.GetJobAsync(Guid.NewGuid()));
        missing.StatusCode.ShouldBe(404);
        missing.Result.Title.ShouldBe("Job not found");

        var anonymous = new CqrsInferenceClient(pipeline.Client);
        var forbidden = await Should.ThrowAsync<ApiException<ProblemDetails>>(() => anonymous.ProjectionLagAsync());
        forbidden.StatusCode.ShouldBe(403);
    }

    private static SubmitJobRequest MlpJob() => new()
    {
        Model = "mlp-test",
        Inputs = [new InputTensor { Name = "x", Datatype = InputTensorDatatype.FP32, Shape = [1, 4], Data = [1f, 2f, 3f, 4f] }],
        Metadata = new Dictionary<string, string> { ["customer"] = "c-42" },
    };
}
