using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Lifecycle;

/// <summary><c>POST /v1/jobs/{id}:retry</c> through the whole pipeline: a new attempt series in the same job.</summary>
public sealed class RetryJobTests(PipelineWithFaultInjectionAndTwoRetries pipeline) : IClassFixture<PipelineWithFaultInjectionAndTwoRetries>
{
    private const string FirstSeriesFails = """{"cqrsi-test-fault":"first-series"}""";
    private const string EverySeriesFails = """{"cqrsi-test-fault":"transient"}""";

    [Fact]
    public async Task A_dead_lettered_job_retried_after_its_fault_passed_succeeds_and_its_history_shows_both_series()
    {
        using var client = await pipeline.ClientOfNewTenantAsync("retry");
        var job = await client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4], FirstSeriesFails));
        var failed = await client.WaitForStatusAsync(job.Id, "failed");
        failed.GetProperty("error").GetProperty("deadLettered").GetBoolean().ShouldBeTrue();
        failed.GetProperty("series").GetInt32().ShouldBe(1);

        var (status, retried) = await client.RetryAsync(job.Id);

        status.ShouldBe(HttpStatusCode.Accepted);
        retried.GetProperty("status").GetString().ShouldBe("queued");
        retried.GetProperty("series").GetInt32().ShouldBe(2);
        retried.GetProperty("error").ValueKind.ShouldBe(JsonValueKind.Null);
        var done = await client.WaitForSeriesAsync(job.Id, 2, "succeeded");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        done.GetProperty("outputs").GetArrayLength().ShouldBe(1);

        // Both series in the one stream, in order; the second's events carry their series.
        (await client.EventTypesAsync(job.Id)).ShouldBe([
            "v1.job_submitted", "v1.job_attempt_failed", "v1.job_attempt_failed", "v1.job_failed", "v1.job_retried", "v1.job_succeeded",
        ]);
        var events = await client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}/events");
        events[4].GetProperty("data").GetProperty("series").GetInt32().ShouldBe(2);
        events[5].GetProperty("data").GetProperty("series").GetInt32().ShouldBe(2);
        events[3].GetProperty("data").TryGetProperty("series", out _).ShouldBeFalse();

        // Time travel shows each series as it stood.
        var endOfFirst = await client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}?version=4");
        (endOfFirst.GetProperty("status").GetString(), endOfFirst.GetProperty("series").GetInt32()).ShouldBe(("failed", 1));
        var startOfSecond = await client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}?version=5");
        (startOfSecond.GetProperty("status").GetString(), startOfSecond.GetProperty("series").GetInt32()).ShouldBe(("queued", 2));

        // Usage counts each run: one dead-lettered, one succeeded, for one submission.
        var now = DateTimeOffset.UtcNow;
        var query = $"/v1/analytics/usage?from={Iso(now.AddHours(-2))}&to={Iso(now.AddHours(1))}&groupBy=model";
        var usage = await Retry.Until("the usage roll-up to count both runs", async () => await client.GetFromJsonAsync<JsonElement>(query),
            rows => rows.EnumerateArray().Sum(r => r.GetProperty("succeeded").GetInt64()) == 1);
        var row = usage.EnumerateArray().ShouldHaveSingleItem();
        (row.GetProperty("submitted").GetInt64(), row.GetProperty("failed").GetInt64(), row.GetProperty("succeeded").GetInt64()).ShouldBe((1L, 1L, 1L));
    }

    [Fact]
    public async Task Only_an_ended_job_that_did_not_succeed_can_be_retried()
    {
        var succeeded = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([1, 0, 0, 1]));
        await pipeline.Client.WaitForStatusAsync(succeeded.Id, "succeeded");
        var slow = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([1, 0, 0, 2], """{"cqrsi-test-fault":"sleep:3000"}"""));

        var (refused, problem) = await pipeline.Client.RetryAsync(succeeded.Id);
        var (stillGoing, _) = await pipeline.Client.RetryAsync(slow.Id);

        refused.ShouldBe(HttpStatusCode.Conflict);
        problem.GetProperty("title").GetString().ShouldBe("Job cannot be retried");
        problem.GetProperty("detail").GetString()!.ShouldContain("succeeded");
        stillGoing.ShouldBe(HttpStatusCode.Conflict);
        (await pipeline.Client.RetryAsync(Guid.NewGuid())).Status.ShouldBe(HttpStatusCode.NotFound);
        (await pipeline.Client.WaitForStatusAsync(slow.Id, "succeeded")).GetProperty("series").GetInt32().ShouldBe(1);
    }

    [Fact]
    public async Task Another_tenants_job_is_not_found()
    {
        using var owner = await pipeline.ClientOfNewTenantAsync("owner");
        using var stranger = await pipeline.ClientOfNewTenantAsync("stranger");
        var job = await owner.SubmitAsync(Scenarios.MlpJob([3, 2, 1, 0], EverySeriesFails));
        await owner.WaitForStatusAsync(job.Id, "failed");

        var (status, problem) = await stranger.RetryAsync(job.Id);

        status.ShouldBe(HttpStatusCode.NotFound);
        problem.GetProperty("title").GetString().ShouldBe("Job not found");
        (await owner.GetJobAsync(job.Id)).GetProperty("series").GetInt32().ShouldBe(1);
    }

    [Fact]
    public async Task Concurrent_retries_begin_one_series_a_repeated_key_answers_its_series_and_the_limit_is_kept()
    {
        var job = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([0, 1, 2, 3], EverySeriesFails));
        await pipeline.Client.WaitForStatusAsync(job.Id, "failed");

        var racing = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => pipeline.Client.RetryAsync(job.Id)));

        // Each answers the one new series (202), or, once the API holds the job queued again, that it is queued (409).
        racing.ShouldContain(r => r.Status == HttpStatusCode.Accepted);
        racing.Where(r => r.Status == HttpStatusCode.Accepted).ShouldAllBe(r => r.Body.GetProperty("series").GetInt32() == 2);
        racing.Where(r => r.Status != HttpStatusCode.Accepted).ShouldAllBe(r => r.Status == HttpStatusCode.Conflict && r.Body.GetProperty("title").GetString() == "Job cannot be retried");
        await pipeline.Client.WaitForSeriesAsync(job.Id, 2, "failed");
        (await pipeline.Client.EventTypesAsync(job.Id)).Count(t => t == "v1.job_retried").ShouldBe(1);

        // The same Idempotency-Key again (a client retrying its call) is the same retry, even after the series ended.
        (await pipeline.Client.RetryAsync(job.Id, "retry-once")).Body.GetProperty("series").GetInt32().ShouldBe(3);
        await pipeline.Client.WaitForSeriesAsync(job.Id, 3, "failed");
        var (again, repeated) = await pipeline.Client.RetryAsync(job.Id, "retry-once");
        again.ShouldBe(HttpStatusCode.Accepted);
        repeated.GetProperty("series").GetInt32().ShouldBe(3);

        // Two retries (Retry:MaxRetries) were all this job may have.
        var (refused, problem) = await pipeline.Client.RetryAsync(job.Id);
        refused.ShouldBe(HttpStatusCode.Conflict);
        problem.GetProperty("title").GetString().ShouldBe("Retry limit reached");
        var types = await pipeline.Client.EventTypesAsync(job.Id);
        types.Count(t => t == "v1.job_retried").ShouldBe(PipelineWithFaultInjectionAndTwoRetries.MaxRetries);
        types.Count(t => t == "v1.job_failed").ShouldBe(3);
    }

    private static string Iso(DateTimeOffset t) => Uri.EscapeDataString(t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture));
}
