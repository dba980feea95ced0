using System.Diagnostics;
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
        var file = Path.Combine(Path.GetTempPath(), $"cqrsi-jobs-{Guid.NewGuid():N}.jsonl");
        await File.WriteAllLinesAsync(file, Enumerable.Range(0, 1000).Select(i => Scenarios.MlpJob([i % 10, 1, 2, 3])));
        try
        {
            var (code, output) = await CliAsync("submit", file, "--lines", "--concurrency", "32");

            code.ShouldBe(0, output);
            output.ShouldContain("1000 succeeded, 0 not succeeded");
            output.ShouldContain("succeeded");
        }
        finally
        {
            File.Delete(file);
        }

        var (listed, jobs) = await CliAsync("jobs", "--limit", "3", "--status", "succeeded");
        listed.ShouldBe(0, jobs);
        jobs.ShouldContain("mlp-test");
        var (accounted, usage) = await CliAsync("usage");
        accounted.ShouldBe(0, usage);
        usage.ShouldContain("mlp-test");
    }

    [Fact]
    public async Task Cli_reports_rejected_jobs_and_fails()
    {
        var file = Path.Combine(Path.GetTempPath(), $"cqrsi-jobs-{Guid.NewGuid():N}.jsonl");
        await File.WriteAllLinesAsync(file, [Scenarios.MlpJob([1, 2, 3, 4]), """{"model":"nope","inputs":[]}"""]);
        try
        {
            var (code, output) = await CliAsync("submit", file, "--lines");

            code.ShouldBe(1, output);
            output.ShouldContain("rejected (422)");
            output.ShouldContain("1 succeeded, 1 not succeeded");
        }
        finally
        {
            File.Delete(file);
        }

        var (missing, message) = await CliAsync("submit", "/no/such/file.json");
        missing.ShouldBe(2);
        message.ShouldContain("No such file");
    }

    [Fact]
    public async Task Cli_submits_with_interactive_mode_and_says_which_path_served_the_job()
    {
        var job = Scenarios.MlpJob([4, 3, 2, 1]);
        var file = Path.Combine(Path.GetTempPath(), $"cqrsi-job-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, job);
        try
        {
            var (code, output) = await CliAsync("submit", file, "--interactive");

            code.ShouldBe(0, output);
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
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>The job's recorded submission; none (404) until the recorder has written the job.</summary>
    private async Task<JsonElement> SubmissionAsync(string id)
    {
        using var response = await pipeline.Operator.GetAsync($"/v1/jobs/{id}/events");
        return response.IsSuccessStatusCode
            ? (await response.Content.ReadFromJsonAsync<JsonElement>()).EnumerateArray().FirstOrDefault(e => e.GetProperty("type").GetString() == "v1.job_submitted")
            : default;
    }

    private async Task<(int Code, string Output)> CliAsync(params string[] arguments)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cqrsi.dll"));
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.ArgumentList.Add("--url");
        info.ArgumentList.Add(pipeline.BaseUrl);
        info.Environment["COLUMNS"] = "200";
        info.Environment["CQRSI_API_KEY"] = TestEnvironment.OperatorKey;
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output + await error);
    }
}
