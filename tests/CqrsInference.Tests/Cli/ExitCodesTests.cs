using CqrsInference.Cli;

namespace CqrsInference.Tests.Cli;

/// <summary>The exit code rules, without a server: one code for "a job did not succeed", another for "the command could not work".</summary>
public sealed class ExitCodesTests
{
    [Theory]
    [InlineData("succeeded", ExitCodes.Ok)]
    [InlineData("queued", ExitCodes.Ok)]
    [InlineData("running", ExitCodes.Ok)]
    [InlineData(null, ExitCodes.Ok)]
    [InlineData("failed", ExitCodes.JobFailed)]
    [InlineData("expired", ExitCodes.JobFailed)]
    [InlineData("cancelled", ExitCodes.JobFailed)]
    public void A_job_exits_1_once_it_ended_without_succeeding(string? status, int code) => ExitCodes.ForJob(status).ShouldBe(code);

    [Theory]
    [InlineData(400, ExitCodes.JobFailed)]
    [InlineData(404, ExitCodes.JobFailed)]
    [InlineData(409, ExitCodes.JobFailed)]
    [InlineData(413, ExitCodes.JobFailed)]
    [InlineData(415, ExitCodes.JobFailed)]
    [InlineData(422, ExitCodes.JobFailed)]
    [InlineData(401, ExitCodes.UsageOrTransport)]
    [InlineData(403, ExitCodes.UsageOrTransport)]
    [InlineData(429, ExitCodes.UsageOrTransport)]
    [InlineData(500, ExitCodes.UsageOrTransport)]
    [InlineData(503, ExitCodes.UsageOrTransport)]
    public void A_refused_submission_is_the_jobs_fault_unless_the_caller_or_the_service_was_refused(int status, int code) =>
        ExitCodes.ForRefusedSubmission(status).ShouldBe(code);

    [Fact]
    public void The_codes_are_the_documented_ones() =>
        (ExitCodes.Ok, ExitCodes.JobFailed, ExitCodes.UsageOrTransport).ShouldBe((0, 1, 2));
}
