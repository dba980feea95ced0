using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using CqrsInference.Cli;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Cli;

public sealed class CliTests(PipelineServedOverHttp pipeline) : IClassFixture<PipelineServedOverHttp>
{
    [Fact]
    public async Task Cli_submits_a_file_of_a_thousand_jobs_and_reports_all_succeeded()
    {
        using var file = await JobsFile.WriteAsync(Enumerable.Range(0, 1000).Select(i => Scenarios.MlpJob([i % 10, 1, 2, 3])));
        var run = await CliAsync("submit", file.Path, "--lines", "--concurrency", "32");

        run.Code.ShouldBe(ExitCodes.Ok, run.ToString());
        run.Out.ShouldContain("1000 succeeded, 0 not succeeded");
        run.Out.ShouldContain("submit→done p50 / p99");

        var jobs = await CliAsync("jobs", "--limit", "3", "--status", "succeeded");
        jobs.Code.ShouldBe(ExitCodes.Ok, jobs.ToString());
        jobs.Out.ShouldContain("mlp-test");
        var usage = await CliAsync("usage");
        usage.Code.ShouldBe(ExitCodes.Ok, usage.ToString());
        usage.Out.ShouldContain("mlp-test");
        var invoice = await CliAsync("invoice", "--tenant", "default");
        invoice.Code.ShouldBe(ExitCodes.Ok, invoice.ToString());
        invoice.Out.ShouldStartWith("jobId,submittedAt,model,modelVersion,runs,");
        invoice.Out.ShouldContain("\ntotal,,,,");
    }

    [Fact]
    public async Task Cli_reports_rejected_jobs_and_fails()
    {
        using var file = await JobsFile.WriteAsync([Scenarios.MlpJob([1, 2, 3, 4]), """{"model":"nope","inputs":[]}"""]);
        var run = await CliAsync("submit", file.Path, "--lines");

        run.Code.ShouldBe(ExitCodes.JobFailed, run.ToString());
        run.Out.ShouldContain("rejected (422)");
        run.Out.ShouldContain("1 succeeded, 1 not succeeded");

        // Why a job did not succeed is on stderr, beside the progress; the report is on stdout.
        run.Err.ShouldContain("422 The request is invalid");
        run.Out.ShouldNotContain("The request is invalid");

        var missing = await CliAsync("submit", "/no/such/file.json");
        missing.Code.ShouldBe(ExitCodes.UsageOrTransport);
        missing.Err.ShouldContain("No such file");
        missing.Out.ShouldBeEmpty();
    }

    [Fact]
    public async Task Cli_submits_with_interactive_mode_and_says_which_path_served_the_job()
    {
        var job = Scenarios.MlpJob([4, 3, 2, 1]);
        using var file = await JobsFile.WriteAsync([job]);
        var run = await CliAsync("submit", file.Path, "--interactive");
        var output = run.Out;

        run.Code.ShouldBe(ExitCodes.Ok, run.ToString());
        output.ShouldContain("1 succeeded, 0 not succeeded");
        var served = Regex.Match(output, @"(?<id>[0-9a-f-]{36}) succeeded, served by (?<path>\S+), ran in region");
        served.Success.ShouldBeTrue(output);

        // Either path may serve it (the queue when no processor answers in time); the table counts it too.
        served.Groups["path"].Value.ShouldBeOneOf("interactive", "queue");
        output.ShouldContain($"served by {served.Groups["path"].Value}");

        // The job the API recorded is the body with "mode":"interactive" (its digest), not the file as it was.
        var sent = JobBody.WithMode(job, JobBody.Interactive);
        JsonDocument.Parse(sent).RootElement.GetProperty("mode").GetString().ShouldBe("interactive");
        var submitted = await Retry.Until("the submission to be recorded", () => SubmissionAsync(served.Groups["id"].Value), e => e.ValueKind == JsonValueKind.Object);
        submitted.GetProperty("data").GetProperty("requestDigest").GetString().ShouldBe(RequestDigest.Of(sent));
    }

    [Fact]
    public async Task An_interrupted_submit_reports_every_job_and_the_same_command_sends_the_rest_without_any_job_twice()
    {
        using var tenant = await pipeline.TenantClientAsync("cli-resumed", "submit", "read");
        var key = tenant.DefaultRequestHeaders.Authorization!.Parameter!;
        // One job at a time, 2,000 of them: the run is still going when the test interrupts it.
        const int Jobs = 2000;
        using var file = await JobsFile.WriteAsync(Enumerable.Range(0, Jobs).Select(i => Scenarios.MlpJob([i % 7, 1, 2, 3])));
        string[] submit = ["submit", file.Path, "--lines", "--key", key, "-o", "json", "--idempotency-key", "resume-test"];

        CliRun first;
        using (var cli = CliProcess.Start(pipeline.BaseUrl, [.. submit, "--concurrency", "1"]))
        {
            await Retry.Until("some of the tenant's jobs to be accepted", () => JobCountAsync(tenant), n => n >= 5, pollEvery: TimeSpan.FromMilliseconds(50));
            cli.Interrupt();
            first = await cli.ExitAsync();
        }

        first.Code.ShouldBe(ExitCodes.Interrupted, first.ToString());
        var report = first.Json();
        var lines = report.GetProperty("jobs").EnumerateArray().ToList();
        lines.Select(j => j.GetProperty("line").GetInt32()).ShouldBe(Enumerable.Range(1, Jobs));
        var answered = lines.Where(j => j.GetProperty("status").GetString() == "succeeded").ToDictionary(j => j.GetProperty("line").GetInt32(), j => j.GetProperty("id").GetString());
        answered.Count.ShouldBeGreaterThan(0, first.ToString());
        lines.Count(j => j.GetProperty("status").GetString() == "interrupted").ShouldBeGreaterThan(0, first.ToString());
        report.GetProperty("sendAgain").GetString()!.ShouldEndWith("--lines --idempotency-key resume-test");

        // The same command again: the jobs answered before are answered as they are (same ids), the
        // one in flight at Ctrl+C too if the API had accepted it, the rest are submitted.
        var second = await CliAsync([.. submit, "--concurrency", "16"]);

        second.Code.ShouldBe(ExitCodes.Ok, second.ToString());
        var all = second.Json().GetProperty("jobs").EnumerateArray().ToList();
        all.ShouldAllBe(j => j.GetProperty("status").GetString() == "succeeded");
        foreach (var (line, id) in answered)
        {
            all[line - 1].GetProperty("id").GetString().ShouldBe(id);
        }

        all.Select(j => j.GetProperty("id").GetString()).Distinct().Count().ShouldBe(Jobs);
        (await ListedAsync(tenant, Jobs)).ShouldBe(Jobs);
    }

    [Fact]
    public async Task Submit_sends_jobs_again_after_429_and_without_retries_says_how_to_send_the_refused_ones_again()
    {
        using var tenant = await pipeline.TenantClientAsync(PipelineServedOverHttp.ThrottledTenant, "submit", "read");
        var key = tenant.DefaultRequestHeaders.Authorization!.Parameter!;
        using var file = await JobsFile.WriteAsync(Enumerable.Range(0, 10).Select(i => Scenarios.MlpJob([i, 2, 2, 2])));

        var refused = await CliAsync("submit", file.Path, "--lines", "--key", key, "--concurrency", "10", "--retries", "0");

        refused.Code.ShouldBe(ExitCodes.UsageOrTransport, refused.ToString());
        refused.Out.ShouldContain("rejected (429)");
        refused.Err.ShouldContain("refused for now. Send them again");
        var again = Regex.Match(refused.Err, @"--idempotency-key (\S+)");
        again.Success.ShouldBeTrue(refused.ToString());

        // The same key: the jobs accepted before are answered as they are, the refused ones are sent
        // until the tenant's rate admits them.
        var sent = await CliAsync("submit", file.Path, "--lines", "--key", key, "--concurrency", "10", "--retries", "20", "--idempotency-key", again.Groups[1].Value, "-o", "json");

        sent.Code.ShouldBe(ExitCodes.Ok, sent.ToString());
        sent.Json().GetProperty("retries").GetInt32().ShouldBeGreaterThan(0);
        sent.Json().GetProperty("succeeded").GetInt32().ShouldBe(10);
        (await ListedAsync(tenant, 10)).ShouldBe(10);
    }

    /// <summary>
    /// How many jobs the tenant lists once at least <paramref name="expected"/> are there: the list is
    /// a read model, which shows a job once its submission is recorded (a full run caught 8 of 10
    /// jobs listed the moment the CLI had seen all 10 succeed); more than expected would be a job
    /// submitted twice.
    /// </summary>
    private static Task<int> ListedAsync(HttpClient client, int expected) =>
        Retry.Until($"{expected} jobs to be listed", () => JobCountAsync(client), n => n >= expected, TimeSpan.FromSeconds(15));

    /// <summary>How many jobs the tenant of <paramref name="client"/> lists now.</summary>
    private static async Task<int> JobCountAsync(HttpClient client)
    {
        var (count, after) = (0, (string?)null);
        do
        {
            var page = await client.GetFromJsonAsync<JsonElement>($"/v1/jobs?limit=1000{(after is null ? "" : $"&after={Uri.EscapeDataString(after)}")}");
            count += page.GetProperty("jobs").GetArrayLength();
            after = page.GetProperty("nextCursor").GetString();
        }
        while (after is not null);
        return count;
    }

    /// <summary>The job's recorded submission; none (404) until the recorder has written the job.</summary>
    private async Task<JsonElement> SubmissionAsync(string id)
    {
        using var response = await pipeline.Operator.GetAsync($"/v1/jobs/{id}/events");
        return response.IsSuccessStatusCode
            ? (await response.Content.ReadFromJsonAsync<JsonElement>()).EnumerateArray().FirstOrDefault(e => e.GetProperty("type").GetString() == "v1.job_submitted")
            : default;
    }

    private Task<CliRun> CliAsync(params string[] arguments) => CliProcess.RunAsync(pipeline.BaseUrl, arguments);
}
