using CqrsInference.Cli;
using CqrsInference.Tests.Batches;

namespace CqrsInference.Tests.Cli;

/// <summary><c>cqrsi batch submit|status|results</c> against a real API, with the exit codes of <see cref="ExitCodes"/>.</summary>
public sealed partial class CliCommandTests
{
    [Fact]
    public async Task Batch_submit_waits_for_the_batch_then_status_and_results_read_it_with_exit_0()
    {
        using var file = await JobsFile.WriteAsync(Enumerable.Range(1, 3).Select(i => BatchScenarios.Line(i)));

        var submit = await CliAsync("batch", "submit", file.Path, "--wait", "--output", "json");

        submit.Code.ShouldBe(ExitCodes.Ok, submit.ToString());
        var batch = submit.Json();
        batch.GetProperty("status").GetString().ShouldBe("completed");
        batch.Count("succeeded").ShouldBe(3);
        var id = batch.GetProperty("id").GetGuid();

        var status = await CliAsync("batch", "status", id.ToString());
        status.Code.ShouldBe(ExitCodes.Ok, status.ToString());
        status.Out.ShouldContain(id.ToString());
        status.Out.ShouldContain("completed");
        status.Out.ShouldContain("3/3");

        var results = await CliAsync("batch", "results", id.ToString());
        results.Code.ShouldBe(ExitCodes.Ok, results.ToString());
        results.JsonLines().Select(r => r.GetProperty("customId").GetString()).ShouldBe(["c1", "c2", "c3"]);
        results.JsonLines().ShouldAllBe(r => r.GetProperty("status").GetString() == "succeeded");

        var errors = await CliAsync("batch", "results", id.ToString(), "--errors");
        errors.Code.ShouldBe(ExitCodes.Ok, errors.ToString());
        errors.Out.Trim().ShouldBeEmpty();
    }

    [Fact]
    public async Task Batch_submit_again_with_its_idempotency_key_answers_the_batch_it_made_instead_of_making_another()
    {
        using var file = await JobsFile.WriteAsync(Enumerable.Range(1, 3).Select(i => BatchScenarios.Line(i)));
        var key = $"cli-batch-{Guid.NewGuid():N}";

        var first = await CliAsync("batch", "submit", file.Path, "--priority", "batch", "--idempotency-key", key, "--output", "json");
        var again = await CliAsync("batch", "submit", file.Path, "--priority", "batch", "--idempotency-key", key, "--wait", "--output", "json");

        first.Code.ShouldBe(ExitCodes.Ok, first.ToString());
        again.Code.ShouldBe(ExitCodes.Ok, again.ToString());
        again.Json().GetProperty("id").GetGuid().ShouldBe(first.Json().GetProperty("id").GetGuid());
        again.Json().Count("succeeded").ShouldBe(3);

        // Other options are another request: the key says so rather than answering the first batch.
        var other = await CliAsync("batch", "submit", file.Path, "--idempotency-key", key);
        other.Code.ShouldBe(ExitCodes.UsageOrTransport, other.ToString());
        other.Err.ShouldContain("409");
    }

    [Fact]
    public async Task Batch_submit_with_a_refused_line_exits_1_and_results_errors_name_the_line()
    {
        using var file = await JobsFile.WriteAsync([BatchScenarios.Line(1), "{not json"]);

        // As a table: the refusal is a note on stderr (JSON output has none: the batch says it).
        var submit = await CliAsync("batch", "submit", file.Path, "--wait");

        submit.Code.ShouldBe(ExitCodes.JobFailed, submit.ToString());
        submit.Err.ShouldContain("1 line(s) refused");
        submit.Out.ShouldContain("2/2");
        var id = Guid.Parse(System.Text.RegularExpressions.Regex.Match(submit.Out, "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").Value);
        var batch = (await CliAsync("batch", "status", id.ToString(), "-o", "json")).Json();
        batch.Count("succeeded").ShouldBe(1);
        batch.Count("refused").ShouldBe(1);

        (await CliAsync("batch", "status", id.ToString())).Code.ShouldBe(ExitCodes.JobFailed);
        var errors = await CliAsync("batch", "results", id.ToString(), "--errors");
        errors.Code.ShouldBe(ExitCodes.Ok, errors.ToString());
        var line = errors.JsonLines().ShouldHaveSingleItem();
        line.GetProperty("line").GetInt32().ShouldBe(2);
        line.GetProperty("error").GetProperty("code").GetString().ShouldBe("invalid_request");
        (await CliAsync("batch", "results", id.ToString())).JsonLines().ShouldHaveSingleItem().GetProperty("customId").GetString().ShouldBe("c1");
    }

    [Theory]
    [InlineData("status")]
    [InlineData("results")]
    public async Task Batch_commands_for_an_unknown_batch_exit_2_with_the_404_on_stderr(string command)
    {
        var run = await CliAsync("batch", command, Guid.NewGuid().ToString());

        run.Code.ShouldBe(ExitCodes.UsageOrTransport, run.ToString());
        run.Out.ShouldBeEmpty();
        run.Err.ShouldContain("404");
    }

    [Theory]
    [InlineData("batch", "status", "not-a-guid")]
    [InlineData("batch", "submit")]
    [InlineData("batch", "results")]
    public async Task A_batch_command_line_that_does_not_parse_exits_2(params string[] arguments)
    {
        var run = await CliAsync(arguments);

        run.Code.ShouldBe(ExitCodes.UsageOrTransport, run.ToString());
        run.Err.ShouldNotBeEmpty();
    }
}
