using System.CommandLine;
using CqrsInference.Cli.Output;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// <c>cqrsi get</c>, <c>cqrsi cancel</c>, <c>cqrsi retry</c> and <c>cqrsi jobs</c>: one job read, cancelled or retried, the
/// recent jobs listed. With <c>--output json</c> each writes the API's JSON as it is.
/// </summary>
internal static class JobCommands
{
    /// <summary>The argument of every command about one job.</summary>
    public static Argument<Guid> JobId() => new("id") { Description = "The job's id" };

    /// <summary><c>cqrsi get &lt;id&gt;</c>: the job now (with its outputs); exits 1 when it failed, expired or was cancelled.</summary>
    public static Command Get(Cqrsi cqrsi)
    {
        var id = JobId();
        var get = new Command("get", "One job: status, timings, error, outputs; exit 1 if it ended without succeeding") { id };
        return cqrsi.Handle(get, async (context, ct) =>
        {
            var job = await context.Api.GetAsync($"/v1/jobs/{context.Value(id)}", ct);
            context.Output.Write(job, Views.Job);
            return ExitCodes.ForJob(Views.Text(job, "status"));
        });
    }

    /// <summary><c>cqrsi cancel &lt;id&gt;</c>: a queued job will never run; a running or finished one is the API's 409 (exit 2).</summary>
    public static Command Cancel(Cqrsi cqrsi)
    {
        var id = JobId();
        var cancel = new Command("cancel", "Cancel a queued or running job (a running one's run is aborted; a finished one cannot be)") { id };
        return cqrsi.Handle(cancel, async (context, ct) =>
        {
            var job = await context.Api.SendAsync(HttpMethod.Delete, $"/v1/jobs/{context.Value(id)}", null, ct);
            context.Output.Write(job, Views.Job);
            return ExitCodes.Ok;
        });
    }

    /// <summary>
    /// <c>cqrsi retry &lt;id&gt;</c>: a failed, expired or cancelled job queued again as its next attempt
    /// series; a queued, running or succeeded one, or one past the retry limit, is the API's 409 (exit 2).
    /// </summary>
    public static Command Retry(Cqrsi cqrsi)
    {
        var id = JobId();
        var retry = new Command("retry", "Retry a failed (or dead-lettered), expired or cancelled job: its next attempt series") { id };
        return cqrsi.Handle(retry, async (context, ct) =>
        {
            var job = await context.Api.SendAsync(HttpMethod.Post, $"/v1/jobs/{context.Value(id)}:retry", null, ct);
            context.Output.Write(job, Views.Job);
            return ExitCodes.Ok;
        });
    }

    /// <summary><c>cqrsi jobs</c>: the tenant's most recent jobs, newest first.</summary>
    public static Command List(Cqrsi cqrsi)
    {
        var status = new Option<string?>("--status") { Description = "Only jobs in this status" }
            .AcceptOnlyFromAmong("queued", "running", "succeeded", "failed", "cancelled", "expired");
        var model = new Option<string?>("--model") { Description = "Only jobs of this model" };
        var limit = new Option<int>("--limit") { Description = "How many (1 to 1000)", DefaultValueFactory = _ => 20 }
            .Within(1, 1000, "--limit must be between 1 and 1000.");
        var list = new Command("jobs", "List the most recent jobs") { status, model, limit };
        return cqrsi.Handle(list, async (context, ct) =>
        {
            var query = $"/v1/jobs?limit={context.Value(limit)}"
                + (context.Parse.GetValue(status) is { } s ? $"&status={s}" : "")
                + (context.Parse.GetValue(model) is { } m ? $"&model={Uri.EscapeDataString(m)}" : "");
            var jobs = await context.Api.GetAsync(query, ct);
            context.Output.Write(jobs, body => Views.Table(Views.Rows(body), Views.JobColumns));
            return ExitCodes.Ok;
        });
    }
}
