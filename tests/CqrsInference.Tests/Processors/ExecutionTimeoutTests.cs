using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Processors;

/// <summary>
/// Execution timeouts through the whole pipeline, on a processor with one slot: a run past its
/// timeout is aborted, its job fails at once with execution_timeout, and the slot runs the next job.
/// </summary>
public sealed class ExecutionTimeoutTests(PipelineWithOneSlotAndFaultInjection pipeline) : IClassFixture<PipelineWithOneSlotAndFaultInjection>
{
    private const string Hang = """{"cqrsi-test-fault":"hang"}""";

    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task A_job_that_hangs_past_its_timeout_fails_at_once_with_execution_timeout_and_frees_its_slot()
    {
        var hanging = await _client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4], Hang, timeout: "200ms"));
        hanging.Status.ShouldBe(HttpStatusCode.Accepted);

        var failed = await _client.WaitForStatusAsync(hanging.Id, "failed");

        failed.GetProperty("attempts").GetInt32().ShouldBe(1);
        var error = failed.GetProperty("error");
        error.GetProperty("code").GetString().ShouldBe("execution_timeout");
        error.GetProperty("message").GetString().ShouldBe("The run passed the execution timeout of 200 ms and was aborted.");
        error.GetProperty("deadLettered").GetBoolean().ShouldBeFalse();

        // Aborted at its timeout, well before the queue's ack wait (2 s) could redeliver it.
        (failed.GetProperty("completedAt").GetDateTimeOffset() - failed.GetProperty("startedAt").GetDateTimeOffset())
            .ShouldBeLessThan(TimeSpan.FromSeconds(1));
        var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{hanging.Id}/events");
        events.EnumerateArray().Select(e => e.GetProperty("type").GetString()).ShouldBe(["v1.job_submitted", "v1.job_failed"]);
        events[0].GetProperty("data").GetProperty("timeoutMs").GetInt32().ShouldBe(200);

        // The only slot is free again: the next job runs.
        var next = await _client.SubmitAsync(Scenarios.MlpJob([4, 3, 2, 1]));
        (await _client.WaitForStatusAsync(next.Id, "succeeded")).GetProperty("attempts").GetInt32().ShouldBe(1);
    }

    [Fact]
    public async Task In_a_batch_with_a_job_that_hangs_only_that_job_fails_and_its_batch_mates_succeed()
    {
        // The slot is busy (seen running, so it cannot join them), so the three queue up and run as
        // one batch once it is free.
        var busy = await _client.SubmitAsync(Scenarios.MlpJob([0, 0, 0, 0], """{"cqrsi-test-fault":"sleep:2500"}"""));
        await _client.WaitForStatusAsync(busy.Id, "running");
        var batch = await BulkAsync([
            Scenarios.MlpJob([1, 1, 1, 1]),
            Scenarios.MlpJob([2, 2, 2, 2], Hang, timeout: "300ms"),
            Scenarios.MlpJob([3, 3, 3, 3], timeout: "5s"),
        ]);

        var first = await _client.WaitForStatusAsync(batch[0], "succeeded");
        var hung = await _client.WaitForStatusAsync(batch[1], "failed");
        var third = await _client.WaitForStatusAsync(batch[2], "succeeded");

        hung.GetProperty("error").GetProperty("code").GetString().ShouldBe("execution_timeout");
        new[] { first, hung, third }.ShouldAllBe(j => j.GetProperty("attempts").GetInt32() == 1);

        // Each ran again alone and carries its own run (batch size 1): the batch-mates pay nothing of
        // the attempt the hang aborted; the hung job carries it and its own aborted run (2 x 300 ms).
        new[] { first, third }.ShouldAllBe(j => j.GetProperty("batchSize").GetInt32() == 1 && j.GetProperty("runMs").GetDouble() < 300);
        var hungRun = hung.GetProperty("cost").GetProperty("failedRuns").EnumerateArray().ShouldHaveSingleItem();
        hungRun.GetProperty("batchSize").GetInt32().ShouldBe(1);
        hungRun.GetProperty("runMs").GetDouble().ShouldBeGreaterThanOrEqualTo(600);
        await _client.WaitForStatusAsync(busy.Id, "succeeded");
    }

    [Fact]
    public async Task A_timeout_over_the_models_cap_is_refused_naming_the_cap()
    {
        var models = await _client.GetFromJsonAsync<JsonElement>("/v1/models");
        models.EnumerateArray().Single(m => m.GetProperty("name").GetString() == "mlp-test").GetProperty("timeoutMs").GetInt32().ShouldBe(30_000);

        var refused = await _client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4], timeout: "1m"));

        refused.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        refused.Body.GetProperty("errors").GetProperty("timeout")[0].GetString()
            .ShouldBe("timeout 60000 ms is over model 'mlp-test''s cap of 30000 ms; ask for at most 30000ms.");
    }

    [Theory]
    [InlineData("\"soon\"")]
    [InlineData("\"0ms\"")]
    [InlineData("250")]
    public async Task A_timeout_that_is_no_positive_duration_is_refused(string timeout)
    {
        var json = Scenarios.MlpJob([1, 2, 3, 4])[..^1] + $$""","timeout":{{timeout}}}""";

        var refused = await _client.SubmitAsync(json);

        refused.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        refused.Body.GetProperty("errors").EnumerateObject().Select(e => e.Name).ShouldBe(["timeout"]);
    }

    private async Task<List<Guid>> BulkAsync(IEnumerable<string> jobs)
    {
        using var content = new StringContent($$"""{"jobs":[{{string.Join(",", jobs)}}]}""", Encoding.UTF8, "application/json");
        using var response = await _client.PostAsync("/v1/jobs:bulk", content);
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return body.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetGuid()).ToList();
    }
}
