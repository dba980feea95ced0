using System.Text.Json;
using CqrsInference.Cli;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Cli;

/// <summary>
/// Each command of <c>cqrsi</c> run as a child process against a real API: results on stdout as a
/// table or as JSON (<c>--output json</c>), errors on stderr, and the exit codes of
/// <see cref="ExitCodes"/> (0 ok, 1 a job did not succeed, 2 usage or transport).
/// </summary>
public sealed partial class CliCommandTests(PipelineServedOverHttpWithFaults pipeline) : IClassFixture<PipelineServedOverHttpWithFaults>
{
    private const string FailingJobMetadata = """{"cqrsi-test-fault":"transient"}""";

    [Fact]
    public async Task Get_shows_a_finished_job_as_a_table_and_as_the_apis_json()
    {
        var id = (await pipeline.Operator.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]))).Id;
        await pipeline.Operator.WaitForStatusAsync(id, "succeeded");

        var table = await CliAsync("get", id.ToString());
        table.Code.ShouldBe(ExitCodes.Ok, table.ToString());
        table.Out.ShouldContain(id.ToString());
        table.Out.ShouldContain("succeeded");
        table.Out.ShouldContain("output ");
        table.Err.ShouldBeEmpty();

        var json = await CliAsync("get", id.ToString(), "--output", "json");
        json.Code.ShouldBe(ExitCodes.Ok, json.ToString());
        var job = json.Json();
        job.GetProperty("id").GetGuid().ShouldBe(id);
        job.GetProperty("status").GetString().ShouldBe("succeeded");
        job.GetProperty("outputs").GetArrayLength().ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task Watch_and_get_exit_1_when_the_job_failed()
    {
        var id = (await pipeline.Operator.SubmitAsync(Scenarios.MlpJob([1, 1, 1, 1], FailingJobMetadata))).Id;

        // Followed while it runs (or after it ended: the stream starts with the status now).
        var watch = await CliAsync("watch", id.ToString());
        watch.Code.ShouldBe(ExitCodes.JobFailed, watch.ToString());
        watch.Out.ShouldContain("status failed");
        watch.Err.ShouldContain("Injected transient fault");

        var lines = (await CliAsync("watch", id.ToString(), "-o", "json")).JsonLines();
        lines.ShouldNotBeEmpty();
        lines[^1].GetProperty("event").GetString().ShouldBe("status");
        lines[^1].GetProperty("data").GetProperty("status").GetString().ShouldBe("failed");

        await pipeline.Operator.WaitForStatusAsync(id, "failed");
        var get = await CliAsync("get", id.ToString());
        get.Code.ShouldBe(ExitCodes.JobFailed, get.ToString());
        get.Out.ShouldContain("Injected transient fault");
    }

    [Fact]
    public async Task Watch_exits_0_when_the_job_succeeded_with_one_json_line_per_event()
    {
        var id = (await pipeline.Operator.SubmitAsync(Scenarios.MlpJob([2, 2, 2, 2]))).Id;

        var watch = await CliAsync("watch", id.ToString(), "--output", "json");

        watch.Code.ShouldBe(ExitCodes.Ok, watch.ToString());
        var events = watch.JsonLines();
        events.ShouldAllBe(e => e.GetProperty("data").ValueKind == JsonValueKind.Object);
        events[^1].GetProperty("event").GetString().ShouldBe("status");
        events[^1].GetProperty("data").GetProperty("status").GetString().ShouldBe("succeeded");
        events[^1].GetProperty("data").GetProperty("id").GetGuid().ShouldBe(id);
    }

    [Fact]
    public async Task Watch_prints_each_event_as_it_is_stored_and_exits_1_when_the_job_is_cancelled()
    {
        var id = (await pipeline.Operator.SubmitAsync(QueuedForever([6, 6, 6, 6]))).Id;
        using var watch = CliProcess.Start(pipeline.BaseUrl, "watch", id.ToString(), "-o", "json");

        // The job's status now, printed while the job still waits: then it is cancelled.
        var first = JsonDocument.Parse((await watch.NextLineAsync())!).RootElement;
        first.GetProperty("data").GetProperty("status").GetString().ShouldBe("queued");
        (await pipeline.Operator.DeleteAsync($"/v1/jobs/{id}")).EnsureSuccessStatusCode();

        var run = await watch.ExitAsync();
        run.Code.ShouldBe(ExitCodes.JobFailed, run.ToString());
        var events = run.JsonLines();
        events.Select(e => e.GetProperty("event").GetString()).ShouldContain("v1.job_cancelled");
        events[^1].GetProperty("data").GetProperty("status").GetString().ShouldBe("cancelled");
    }

    [Fact]
    public async Task Cancel_cancels_a_queued_job_and_a_finished_one_is_refused_on_stderr_with_exit_2()
    {
        var queued = (await pipeline.Operator.SubmitAsync(QueuedForever([3, 3, 3, 3]))).Id;
        var finished = (await pipeline.Operator.SubmitAsync(Scenarios.MlpJob([3, 3, 3, 3]))).Id;

        var cancel = await CliAsync("cancel", queued.ToString());
        cancel.Code.ShouldBe(ExitCodes.Ok, cancel.ToString());
        cancel.Out.ShouldContain("cancelled");
        await pipeline.Operator.WaitForStatusAsync(queued, "cancelled");
        (await CliAsync("get", queued.ToString())).Code.ShouldBe(ExitCodes.JobFailed);

        await pipeline.Operator.WaitForStatusAsync(finished, "succeeded");
        var refused = await CliAsync("cancel", finished.ToString(), "--output", "json");
        refused.Code.ShouldBe(ExitCodes.UsageOrTransport, refused.ToString());
        refused.Out.ShouldBeEmpty();
        var problem = JsonDocument.Parse(refused.Err).RootElement;
        problem.GetProperty("status").GetInt32().ShouldBe(409);
        problem.GetProperty("title").GetString().ShouldBe("Job cannot be cancelled");
    }

    [Fact]
    public async Task Retry_queues_a_dead_lettered_job_again_and_a_succeeded_one_is_refused_on_stderr_with_exit_2()
    {
        var failed = (await pipeline.Operator.SubmitAsync(Scenarios.MlpJob([4, 4, 4, 4], """{"cqrsi-test-fault":"first-series"}"""))).Id;
        await pipeline.Operator.WaitForStatusAsync(failed, "failed");

        var retry = await CliAsync("retry", failed.ToString(), "--output", "json");
        retry.Code.ShouldBe(ExitCodes.Ok, retry.ToString());
        retry.Json().GetProperty("series").GetInt32().ShouldBe(2);
        await pipeline.Operator.WaitForSeriesAsync(failed, 2, "succeeded");

        var refused = await CliAsync("retry", failed.ToString(), "--output", "json");
        refused.Code.ShouldBe(ExitCodes.UsageOrTransport, refused.ToString());
        JsonDocument.Parse(refused.Err).RootElement.GetProperty("title").GetString().ShouldBe("Job cannot be retried");
    }

    [Fact]
    public async Task Models_lists_the_served_models_with_their_tensors()
    {
        var table = await CliAsync("models");
        table.Code.ShouldBe(ExitCodes.Ok, table.ToString());
        table.Out.ShouldContain("mlp-test");
        table.Out.ShouldContain("x FP32 [");

        var models = (await CliAsync("models", "-o", "json")).Json();
        var mlp = models.EnumerateArray().Single(m => m.GetProperty("name").GetString() == "mlp-test");
        mlp.GetProperty("inputs")[0].GetProperty("name").GetString().ShouldBe("x");
    }

    [Fact]
    public async Task Keys_creates_lists_and_revokes_a_key_that_then_stops_working()
    {
        var tenant = "cli-" + Guid.NewGuid().ToString("N")[..8];
        var created = await CliAsync("keys", "create", "--tenant", tenant, "--name", "ci", "--roles", "submit,read", "-o", "json");
        created.Code.ShouldBe(ExitCodes.Ok, created.ToString());
        var (id, secret) = (created.Json().GetProperty("id").GetString()!, created.Json().GetProperty("key").GetString()!);
        created.Json().GetProperty("roles").EnumerateArray().Select(r => r.GetString()).ShouldBe(["submit", "read"]);

        var listed = await CliAsync("keys", "list", "--tenant", tenant);
        listed.Code.ShouldBe(ExitCodes.Ok, listed.ToString());
        listed.Out.ShouldContain(id);
        listed.Out.ShouldNotContain(secret);
        (await CliAsync("jobs", "--key", secret)).Code.ShouldBe(ExitCodes.Ok);

        var revoked = await CliAsync("keys", "revoke", id);
        revoked.Code.ShouldBe(ExitCodes.Ok, revoked.ToString());
        revoked.Out.ShouldContain($"Key {id} revoked");

        var refused = await CliAsync("jobs", "--key", secret);
        refused.Code.ShouldBe(ExitCodes.UsageOrTransport, refused.ToString());
        refused.Err.ShouldContain("401");
        refused.Out.ShouldBeEmpty();

        var invalid = await CliAsync("keys", "create", "--tenant", tenant, "--roles", "nonsense");
        invalid.Code.ShouldBe(ExitCodes.UsageOrTransport, invalid.ToString());
        invalid.Err.ShouldContain("roles: Roles must be");
    }

    [Fact]
    public async Task Submit_with_output_json_reports_every_job_in_order_and_exits_1_when_one_was_refused()
    {
        using var file = await JobsFile.WriteAsync([Scenarios.MlpJob([5, 6, 7, 8]), """{"model":"nope","inputs":[]}"""]);
        var run = await CliAsync("submit", file.Path, "--lines", "--output", "json");

        run.Code.ShouldBe(ExitCodes.JobFailed, run.ToString());
        run.Err.ShouldBeEmpty();
        var report = run.Json();
        report.GetProperty("submitted").GetInt32().ShouldBe(2);
        report.GetProperty("succeeded").GetInt32().ShouldBe(1);
        var (ran, refused) = (report.GetProperty("jobs")[0], report.GetProperty("jobs")[1]);
        ran.GetProperty("status").GetString().ShouldBe("succeeded");
        ran.GetProperty("job").GetProperty("outputs").GetArrayLength().ShouldBeGreaterThan(0);
        refused.GetProperty("status").GetString().ShouldBe("rejected");
        refused.GetProperty("httpStatus").GetInt32().ShouldBe(422);
        refused.GetProperty("problem").GetProperty("errors").ValueKind.ShouldBe(JsonValueKind.Object);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("99999999")]
    public async Task Usage_over_hours_the_api_does_not_answer_is_refused_before_asking(string hours)
    {
        var run = await CliAsync("usage", "--hours", hours);

        run.Code.ShouldBe(ExitCodes.UsageOrTransport, run.ToString());
        run.Err.ShouldContain("--hours must be from 1 to 9599");
    }

    [Theory]
    [InlineData("jobs")]
    [InlineData("usage")]
    [InlineData("models")]
    [InlineData("keys", "list")]
    public async Task Every_listing_writes_the_apis_json_with_output_json(params string[] command)
    {
        var run = await CliAsync([.. command, "--output", "json"]);

        run.Code.ShouldBe(ExitCodes.Ok, run.ToString());
        run.Json().ValueKind.ShouldBeOneOf(JsonValueKind.Array, JsonValueKind.Object);
    }

    [Fact]
    public async Task Audit_tail_writes_one_json_line_per_event_with_output_json()
    {
        var id = (await pipeline.Operator.SubmitAsync(Scenarios.MlpJob([4, 4, 4, 4]))).Id;
        await pipeline.Operator.WaitForStatusAsync(id, "succeeded");

        var run = await CliAsync("audit", "tail", "-o", "json");

        run.Code.ShouldBe(ExitCodes.Ok, run.ToString());
        run.JsonLines().Where(e => e.GetProperty("streamId").GetGuid() == id).Select(e => e.GetProperty("type").GetString()).ShouldContain("v1.job_succeeded");

        // The operator names another tenant: that tenant's events only.
        using var other = await pipeline.TenantClientAsync("cli-audited", "submit", "read");
        var theirs = (await other.SubmitAsync(Scenarios.MlpJob([5, 4, 4, 4]))).Id;
        await other.WaitForStatusAsync(theirs, "succeeded");
        var named = await Retry.Until("the other tenant's job to be recorded", () => CliAsync("audit", "tail", "--tenant", "cli-audited", "-o", "json"),
            r => r.JsonLines().Any(e => e.GetProperty("type").GetString() == "v1.job_succeeded"));
        named.JsonLines().ShouldAllBe(e => e.GetProperty("streamId").GetGuid() == theirs);
    }

    [Fact]
    public async Task An_api_refusal_or_an_unreachable_api_is_one_error_on_stderr_with_exit_2()
    {
        var missing = Guid.NewGuid();
        var notFound = await CliAsync("get", missing.ToString());
        notFound.Code.ShouldBe(ExitCodes.UsageOrTransport, notFound.ToString());
        notFound.Out.ShouldBeEmpty();
        notFound.Err.ShouldContain($"404 Job not found: There is no job {missing}.");

        var asJson = await CliAsync("get", missing.ToString(), "--output", "json");
        asJson.Out.ShouldBeEmpty();
        JsonDocument.Parse(asJson.Err).RootElement.GetProperty("status").GetInt32().ShouldBe(404);

        var unreachable = await CliProcess.RunAsync($"http://127.0.0.1:{NatsServerProcess.FreePort()}", "models");
        unreachable.Code.ShouldBe(ExitCodes.UsageOrTransport, unreachable.ToString());
        unreachable.Out.ShouldBeEmpty();
        unreachable.Err.ShouldContain("Cannot reach");
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("get", "not-a-guid")]
    [InlineData("jobs", "--output", "xml")]
    [InlineData("jobs", "--limit", "0")]
    [InlineData("keys", "create")]
    [InlineData("submit")]
    public async Task A_command_line_that_does_not_parse_exits_2_with_its_errors_on_stderr(params string[] arguments)
    {
        var run = await CliAsync(arguments);

        run.Code.ShouldBe(ExitCodes.UsageOrTransport, run.ToString());
        run.Out.ShouldBeEmpty();
        run.Err.ShouldNotBeEmpty();
    }

    /// <summary>A job for the region no processor serves: it stays queued until it is cancelled.</summary>
    private static string QueuedForever(float[] x) => Scenarios.MlpJob(x)[..^1] + $",\"region\":\"{PipelineServedOverHttpWithFaults.UnservedRegion}\"}}";

    [Fact]
    public async Task A_backtest_that_compared_no_job_exits_1_saying_so_not_0_as_if_nothing_differed()
    {
        // A window of another year (a typo in --from): nothing to run again. "No differences" let a
        // release gate pass on no evidence.
        var run = await CliAsync("backtest", "start", "mlp-test", "1", "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-02T00:00:00Z", "--wait");

        run.Code.ShouldBe(ExitCodes.JobFailed, run.ToString());
        run.Out.ShouldContain("completed");
        run.Err.ShouldContain("The backtest compared no job");

        var json = await CliAsync("backtest", "start", "mlp-test", "1", "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-02T00:00:00Z", "--wait", "-o", "json");
        json.Code.ShouldBe(ExitCodes.JobFailed, json.ToString());
        json.Json().GetProperty("compared").GetInt32().ShouldBe(0);
    }

    private Task<CliRun> CliAsync(params string[] arguments) => CliProcess.RunAsync(pipeline.BaseUrl, arguments);
}
