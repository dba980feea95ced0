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
