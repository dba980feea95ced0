using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// <c>cqrsi submit</c>: one job (a JSON file) or a file of jobs (JSON lines), at most
/// <c>--concurrency</c> at a time, each waiting for its result (a synchronous submit, then the job's
/// event stream for the rare job that outlasts the wait); a live progress bar on stderr, then a
/// report (<see cref="SubmitReport"/>). With <c>--interactive</c> every job is sent with
/// <c>"mode":"interactive"</c>. Exits 0 when every job succeeded, 1 when any did not (or was
/// refused for what it is), 2 when the service or the caller was refused (<see cref="ExitCodes.ForRefusedSubmission"/>).
/// </summary>
internal static class SubmitCommand
{
    /// <summary>How long one submit waits for its job before the stream takes over.</summary>
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    public static Command Create(Cqrsi cqrsi)
    {
        var file = new Argument<FileInfo>("file") { Description = "A job as JSON, or with --lines a file of jobs, one JSON object per line" };
        var lines = new Option<bool>("--lines") { Description = "The file holds one job per line (JSON lines)" };
        var concurrency = new Option<int>("--concurrency") { Description = "Jobs in flight at once", DefaultValueFactory = _ => 16 }
            .Within(1, int.MaxValue, "--concurrency must be at least 1.");
        var interactive = new Option<bool>("--interactive")
        {
            Description = "Send each job with \"mode\":\"interactive\" (request/reply to a processor, the queue as fallback) and say which path served it",
        };
        var submit = new Command("submit", "Submit jobs and wait for their results, with progress and a summary") { file, lines, concurrency, interactive };
        return cqrsi.Handle(submit, async (context, ct) =>
        {
            var jobs = await ReadAsync(context.Value(file), context.Value(lines), context.Value(interactive), ct);
            var wall = Stopwatch.StartNew();
            var outcomes = await RunAllAsync(context, jobs, context.Value(file).Name, context.Value(concurrency), ct);
            var report = new SubmitReport(outcomes, wall.Elapsed);
            report.Write(context.Output);
            return report.ExitCode;
        });
    }

    private static async Task<List<string>> ReadAsync(FileInfo file, bool lines, bool interactive, CancellationToken ct)
    {
        if (!file.Exists)
        {
            throw new CliException($"No such file: {file.FullName}");
        }

        var jobs = lines
            ? (await File.ReadAllLinesAsync(file.FullName, ct)).Where(l => l.Trim().Length > 0).ToList()
            : [await File.ReadAllTextAsync(file.FullName, ct)];
        if (jobs.Count == 0)
        {
            throw new CliException($"{file.FullName} holds no jobs.");
        }

        return interactive ? jobs.ConvertAll(job => JobBody.WithMode(job, JobBody.Interactive)) : jobs;
    }

    /// <summary>Every job's outcome, in the file's order; the progress bar (on stderr) only for people.</summary>
    private static async Task<SubmitOutcome[]> RunAllAsync(CliContext context, List<string> jobs, string name, int concurrency, CancellationToken ct)
    {
        var outcomes = new SubmitOutcome[jobs.Count];
        var options = new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = ct };
        Task RunAsync(Action done) => Parallel.ForEachAsync(Enumerable.Range(0, jobs.Count), options, async (i, token) =>
        {
            outcomes[i] = await RunOneAsync(context.Api, jobs[i], token);
            done();
        });

        if (context.Output.IsJson)
        {
            await RunAsync(() => { });
            return outcomes;
        }

        await context.Output.Progress.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(progress =>
            {
                var bar = progress.AddTask(Markup.Escape($"{jobs.Count} job(s) from {name}"), maxValue: jobs.Count);
                return RunAsync(() => bar.Increment(1));
            });
        return outcomes;
    }

    private static async Task<SubmitOutcome> RunOneAsync(ApiClient api, string json, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var (status, body) = await api.SubmitAsync(json, Wait, ct);
        if (status is not (200 or 202))
        {
            return SubmitOutcome.Refused(status, body, watch.Elapsed);
        }

        // servedBy is the submit answer's: later views of the job do not carry it.
        var servedBy = Output.Views.Text(body, "servedBy");
        if (!ExitCodes.Terminal.Contains(Output.Views.Text(body, "status") ?? ""))
        {
            try
            {
                body = await JobStream.FollowAsync(api, body.GetProperty("id").GetGuid(), _ => { }, ct);
            }
            catch (Exception e) when (e is CliException or HttpRequestException or IOException && !ct.IsCancellationRequested)
            {
                // One job's stream (refused, over the tenant's stream limit, gone silent) is that
                // job's line of the report, not the end of the whole command and its report.
                return SubmitOutcome.Unfollowed(body, servedBy, e.Message, watch.Elapsed);
            }
        }

        return SubmitOutcome.Ended(body, servedBy, watch.Elapsed);
    }
}

/// <summary>
/// One job's end as <c>submit</c> saw it: the job's last view (<paramref name="Job"/>), or the API's
/// refusal (<paramref name="HttpStatus"/> and its problem details), and the time from submit to end.
/// </summary>
internal sealed record SubmitOutcome(string Status, TimeSpan Elapsed, JsonElement Job, string? ServedBy = null, int? HttpStatus = null, string? LostBecause = null)
{
    public const string Rejected = "rejected";

    public string? Id => Output.Views.Text(Job, "id");

    /// <summary>Why it did not succeed, in one line: the job's error, or the refusal.</summary>
    public string? Detail => HttpStatus is { } refused
        ? ApiException.Describe(refused, Job)
        : LostBecause is { } lost ? $"{Id}: not followed to its end ({lost})"
        : Output.Views.Text(Job, "error") is { } error ? $"{Id}: {error}" : null;

    public int ExitCode => HttpStatus is { } refused ? ExitCodes.ForRefusedSubmission(refused)
        : LostBecause is not null ? ExitCodes.UsageOrTransport
        : ExitCodes.ForJob(Status);

    public static SubmitOutcome Refused(int status, JsonElement problem, TimeSpan elapsed) => new(Rejected, elapsed, problem, HttpStatus: status);

    /// <summary>Accepted, but its end could not be followed: its status as the submit answered it, and why.</summary>
    public static SubmitOutcome Unfollowed(JsonElement job, string? servedBy, string reason, TimeSpan elapsed) =>
        new(Output.Views.Text(job, "status") ?? "unknown", elapsed, job, servedBy, LostBecause: reason);

    public static SubmitOutcome Ended(JsonElement job, string? servedBy, TimeSpan elapsed) =>
        new(Output.Views.Text(job, "status") ?? "unknown", elapsed, job, servedBy);
}
