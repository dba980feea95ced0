using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Polly;
using Spectre.Console;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// <c>cqrsi submit</c>: one job (a JSON file) or a file of jobs (JSON lines), at most
/// <c>--concurrency</c> at a time, each waiting for its result (a synchronous submit, then the job's
/// event stream for the rare job that outlasts the wait); a live progress bar on stderr, then a
/// report (<see cref="SubmitReport"/>). With <c>--interactive</c> every job is sent with
/// <c>"mode":"interactive"</c>. Every job is sent with an Idempotency-Key (<c>--idempotency-key</c>
/// and its line), so that a job is sent again after 429, 503 or a lost connection
/// (<see cref="SubmitRetries"/>) and a run that was interrupted or could not reach the API is resumed
/// by the same command with the same key, without a job running twice. Exits 0 when every job
/// succeeded, 1 when any did not (or was refused for what it is), 2 when the service or the caller
/// was refused (<see cref="ExitCodes.ForRefusedSubmission"/>) or a job was not answered, 130 when interrupted.
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
        var key = SubmitRetries.KeyOption(
            "Send the file's job on line n with Idempotency-Key <this>-<n> (a single job: <this>): the same command with the same key "
            + "submits the jobs still missing and answers those already accepted as they stand, not run or charged again. Default: a new key, "
            + "printed when jobs were not answered");
        var retries = SubmitRetries.RetriesOption();
        var submit = new Command("submit", "Submit jobs and wait for their results, with progress and a summary") { file, lines, concurrency, interactive, key, retries };
        return cqrsi.Handle(submit, async (context, ct) =>
        {
            var run = new SubmitRun(context.Value(file), context.Value(lines), context.Value(interactive), context.Parse.GetValue(key) ?? SubmitRetries.NewKey());
            var jobs = await ReadAsync(run, ct);
            var wall = Stopwatch.StartNew();
            var pipeline = SubmitRetries.Create(context.Value(retries));
            var outcomes = await RunAllAsync(context, run.File.Name, jobs, (job, token) => RunOneAsync(context.Api, pipeline, job, token), context.Value(concurrency), ct);
            var report = new SubmitReport(outcomes, wall.Elapsed, run);
            report.Write(context.Output);
            return ct.IsCancellationRequested ? ExitCodes.Interrupted : report.ExitCode;
        });
    }

    private static async Task<List<JobLine>> ReadAsync(SubmitRun run, CancellationToken ct)
    {
        if (!run.File.Exists)
        {
            throw new CliException($"No such file: {run.File.FullName}");
        }

        var jobs = run.Lines
            ? (await File.ReadAllLinesAsync(run.File.FullName, ct)).Select((json, i) => new JobLine(i + 1, json, $"{run.Key}-{i + 1}"))
                .Where(l => l.Json.Trim().Length > 0).ToList()
            : [new JobLine(null, await File.ReadAllTextAsync(run.File.FullName, ct), run.Key)];
        if (jobs.Count == 0)
        {
            throw new CliException($"{run.File.FullName} holds no jobs.");
        }

        return run.Interactive ? jobs.ConvertAll(job => job with { Json = JobBody.WithMode(job.Json, JobBody.Interactive) }) : jobs;
    }

    /// <summary>
    /// Every job's outcome, in the file's order; the progress bar (on stderr) only for people. Ctrl+C,
    /// or a job that could not be sent at all (the API out of reach), stops the run: the jobs not
    /// answered then are reported as such, so that the report still names every job that was.
    /// </summary>
    private static async Task<SubmitOutcome[]> RunAllAsync(
        CliContext context, string name, List<JobLine> jobs, Func<JobLine, CancellationToken, Task<SubmitOutcome>> runOne, int concurrency, CancellationToken ct)
    {
        var outcomes = new SubmitOutcome?[jobs.Count];
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var options = new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = stop.Token };
        async Task RunAsync(Action done)
        {
            try
            {
                await Parallel.ForEachAsync(Enumerable.Range(0, jobs.Count), options, async (i, token) =>
                {
                    var outcome = outcomes[i] = await runOne(jobs[i], token);
                    if (outcome.Status == SubmitOutcome.Unsent)
                    {
                        await stop.CancelAsync();
                    }

                    done();
                });
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // Interrupted or out of reach: what was answered is reported below.
            }
        }

        if (context.Output.IsJson)
        {
            await RunAsync(() => { });
        }
        else
        {
            await context.Output.Progress.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .StartAsync(progress =>
                {
                    var bar = progress.AddTask(Markup.Escape($"{jobs.Count} job(s) from {name}"), maxValue: jobs.Count);
                    return RunAsync(() => bar.Increment(1));
                });
        }

        var why = ct.IsCancellationRequested ? SubmitOutcome.Interrupted : SubmitOutcome.Stopped;
        return outcomes.Select((o, i) => o ?? SubmitOutcome.Unanswered(why, jobs[i])).ToArray();
    }

    private static async Task<SubmitOutcome> RunOneAsync(ApiClient api, ResiliencePipeline<SubmitAnswer> retries, JobLine job, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var attempts = 0;
        SubmitAnswer answer;
        try
        {
            answer = await retries.ExecuteAsync(
                async token =>
                {
                    attempts++;
                    return await api.SubmitAsync(job.Json, job.IdempotencyKey, Wait, token);
                },
                ct);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return SubmitOutcome.Unanswered(SubmitOutcome.Unsent, job, e.Message) with { Retries = attempts - 1 };
        }

        var outcome = await FollowAsync(api, answer, watch, ct);
        return outcome with { Line = job.Line, Retries = attempts - 1 };
    }

    private static async Task<SubmitOutcome> FollowAsync(ApiClient api, SubmitAnswer answer, Stopwatch watch, CancellationToken ct)
    {
        var (status, body) = (answer.Status, answer.Body);
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

/// <summary>What one <c>submit</c> was asked to send: the file, how to read it, and the key its jobs' Idempotency-Keys begin with.</summary>
internal sealed record SubmitRun(FileInfo File, bool Lines, bool Interactive, string Key)
{
    /// <summary>The command that sends the same jobs with the same keys again: what a run that did not finish says to do.</summary>
    public string Again => $"cqrsi submit {SubmitRetries.Quoted(File.FullName)}{(Lines ? " --lines" : "")}{(Interactive ? " --interactive" : "")} --idempotency-key {Key}";

}

/// <summary>One job of the file: its line (none for a file of one job), its JSON as sent, and its Idempotency-Key.</summary>
internal sealed record JobLine(int? Line, string Json, string IdempotencyKey);

/// <summary>
/// One job's end as <c>submit</c> saw it: the job's last view (<paramref name="Job"/>), or the API's
/// refusal (<paramref name="HttpStatus"/> and its problem details), or why it was not answered
/// (<paramref name="LostBecause"/>), and the time from submit to end; its line in the file and how
/// many times it was sent again.
/// </summary>
internal sealed record SubmitOutcome(string Status, TimeSpan Elapsed, JsonElement Job, string? ServedBy = null, int? HttpStatus = null, string? LostBecause = null)
{
    public const string Rejected = "rejected";

    /// <summary>Not answered: the run was interrupted (Ctrl+C) before its answer came, or before it was sent.</summary>
    public const string Interrupted = "interrupted";

    /// <summary>Not answered: the API could not be reached for it, even after its retries.</summary>
    public const string Unsent = "unsent";

    /// <summary>Not answered: the run stopped (the API could not be reached for another job) before its answer came, or before it was sent.</summary>
    public const string Stopped = "stopped";

    public int? Line { get; init; }

    public int Retries { get; init; }

    public string? Id => Output.Views.Text(Job, "id");

    /// <summary>Whether the API's answer for it never came (it may have been accepted: the same key tells on a second run).</summary>
    public bool NotAnswered => Status is Interrupted or Unsent or Stopped;

    /// <summary>Why it did not succeed, in one line: the job's error, the refusal, or why it was not answered (interrupted and stopped: none, the report counts them).</summary>
    public string? Detail => (Line is { } line ? $"line {line}: " : "") switch
    {
        var where when HttpStatus is { } refused => where + ApiException.Describe(refused, Job),
        var where when Status == Unsent => $"{where}not answered ({LostBecause})",
        _ when NotAnswered => null,
        var where when LostBecause is { } lost => $"{where}{Id}: not followed to its end ({lost})",
        var where => Output.Views.Text(Job, "error") is { } error ? $"{where}{Id}: {error}" : null,
    };

    public int ExitCode => HttpStatus is { } refused ? ExitCodes.ForRefusedSubmission(refused)
        : LostBecause is not null || NotAnswered ? ExitCodes.UsageOrTransport
        : ExitCodes.ForJob(Status);

    public static SubmitOutcome Refused(int status, JsonElement problem, TimeSpan elapsed) => new(Rejected, elapsed, problem, HttpStatus: status);

    /// <summary>Accepted, but its end could not be followed: its status as the submit answered it, and why.</summary>
    public static SubmitOutcome Unfollowed(JsonElement job, string? servedBy, string reason, TimeSpan elapsed) =>
        new(Output.Views.Text(job, "status") ?? "unknown", elapsed, job, servedBy, LostBecause: reason);

    public static SubmitOutcome Ended(JsonElement job, string? servedBy, TimeSpan elapsed) =>
        new(Output.Views.Text(job, "status") ?? "unknown", elapsed, job, servedBy);

    /// <summary>No answer came for <paramref name="job"/> (<paramref name="status"/> says why).</summary>
    public static SubmitOutcome Unanswered(string status, JobLine job, string? reason = null) =>
        new(status, TimeSpan.Zero, default, LostBecause: reason) { Line = job.Line };
}
