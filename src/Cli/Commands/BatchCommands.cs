using System.CommandLine;
using System.Text.Json;
using CqrsInference.Cli.Output;
using Spectre.Console;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// <c>cqrsi batch submit|status|results</c>: a JSONL file handed to the API as one batch
/// (<c>POST /v1/batches</c>), followed with a progress bar on stderr, and its results or errors
/// written to stdout as the API's JSONL. Exit 1 when a line was refused or ended without succeeding.
/// A batch is submitted with an Idempotency-Key and sent again after 429, 503 or a lost connection
/// (<see cref="SubmitRetries"/>); when it could not be, the error says the command that sends it
/// again with the same key, which answers the batch the API accepted, if it did, instead of making another.
/// </summary>
internal static class BatchCommands
{
    public static Command Create(Cqrsi cqrsi) => new("batch", "Batches of jobs: one JSONL file, followed as one batch")
    {
        Submit(cqrsi),
        Status(cqrsi),
        Results(cqrsi),
    };

    private static Argument<Guid> BatchId() => new("id") { Description = "The batch's id" };

    private static Command Submit(Cqrsi cqrsi)
    {
        var file = new Argument<FileInfo>("file") { Description = "A JSONL file: one job request (as for POST /v1/jobs, optionally with a customId) a line" };
        var deadline = new Option<string?>("--deadline") { Description = "When unfinished lines expire: a timestamp, or a duration from now (e.g. 30m)" };
        var priority = new Option<string?>("--priority") { Description = "interactive or batch (the default)" };
        var atomic = new Option<bool>("--atomic") { Description = "Refuse the whole file if any line is invalid" };
        var wait = new Option<bool>("--wait") { Description = "Wait until the batch ends, with a progress bar on stderr" };
        var key = SubmitRetries.KeyOption(
            "Submit the batch with this Idempotency-Key: the same command with the same key answers the batch it made (at once or after an error) "
            + "instead of making another. Default: a new key, printed when the batch could not be submitted");
        var retries = SubmitRetries.RetriesOption();
        var submit = new Command("submit", "Submit a JSONL file as one batch") { file, deadline, priority, atomic, wait, key, retries };
        return cqrsi.Handle(submit, async (context, ct) =>
        {
            var idempotencyKey = context.Parse.GetValue(key) ?? SubmitRetries.NewKey();
            // The query the batch is sent with, and the options that say the same on a command line (to send it again).
            var (query, given) = (new List<string>(), new List<string>());
            if (context.Parse.GetValue(deadline) is { } d)
            {
                query.Add($"deadline={Uri.EscapeDataString(d)}");
                given.Add($" --deadline {SubmitRetries.Quoted(d)}");
            }

            if (context.Parse.GetValue(priority) is { } p)
            {
                query.Add($"priority={Uri.EscapeDataString(p)}");
                given.Add($" --priority {SubmitRetries.Quoted(p)}");
            }

            if (context.Parse.GetValue(atomic))
            {
                query.Add("atomic=true");
                given.Add(" --atomic");
            }

            if (context.Parse.GetValue(wait))
            {
                given.Add(" --wait");
            }

            var path = $"/v1/batches{(query.Count > 0 ? "?" + string.Join("&", query) : "")}";
            var again = $"cqrsi batch submit {SubmitRetries.Quoted(context.Value(file).FullName)}{string.Concat(given)} --idempotency-key {idempotencyKey}";
            var accepted = await SendAsync(context, path, context.Value(file), idempotencyKey, context.Value(retries), again, ct);
            var batch = accepted.GetProperty("batch");
            var refused = accepted.GetProperty("refused").GetArrayLength();
            if (refused > 0)
            {
                context.Output.Note($"[yellow]{refused} line(s) refused[/]: cqrsi batch results {batch.GetProperty("id").GetGuid()} --errors");
            }

            if (context.Parse.GetValue(wait))
            {
                batch = await FollowAsync(context, batch.GetProperty("id").GetGuid(), ct);
            }

            context.Output.Write(batch, Batch);
            return ForBatch(batch);
        });
    }

    /// <summary>The batch file posted, sent again as <see cref="SubmitRetries"/> says; a refusal or a connection lost for good says <paramref name="again"/>.</summary>
    private static async Task<JsonElement> SendAsync(CliContext context, string path, FileInfo file, string key, int retries, string again, CancellationToken ct)
    {
        if (!file.Exists)
        {
            throw new CliException($"No such file: {file.FullName}");
        }

        SubmitAnswer answer;
        try
        {
            answer = await SubmitRetries.Create(retries).ExecuteAsync(token => new ValueTask<SubmitAnswer>(context.Api.PostFileAsync(path, file.OpenRead, "application/jsonl", key, token)), ct);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            throw new CliException($"The batch was not answered ({e.Message}). Send it again with the same key (a batch the API accepted is answered, not made twice):\n{again}");
        }

        if (answer.Status is 429 or >= 500)
        {
            context.Output.Note("Send it again later with the same key:");
            context.Output.Note(Markup.Escape(again));
        }

        return answer.Status is >= 200 and < 300 ? answer.Body : throw new ApiException(answer.Status, answer.Body);
    }

    private static Command Status(Cqrsi cqrsi)
    {
        var id = BatchId();
        var status = new Command("status", "One batch: status, lines per status, progress, cost; exit 1 if a line did not succeed") { id };
        return cqrsi.Handle(status, async (context, ct) =>
        {
            var batch = await context.Api.GetAsync($"/v1/batches/{context.Value(id)}", ct);
            context.Output.Write(batch, Batch);
            return ForBatch(batch);
        });
    }

    private static Command Results(Cqrsi cqrsi)
    {
        var id = BatchId();
        var errors = new Option<bool>("--errors") { Description = "The lines that did not succeed, instead of the results" };
        var results = new Command("results", "The batch's results (or --errors) so far, as JSONL in input order") { id, errors };
        return cqrsi.Handle(results, async (context, ct) =>
        {
            await using var stream = await context.Api.ReadStreamAsync(
                $"/v1/batches/{context.Value(id)}/{(context.Parse.GetValue(errors) ? "errors" : "results")}", ct);
            await using var stdout = Console.OpenStandardOutput();
            await stream.CopyToAsync(stdout, ct);
            return ExitCodes.Ok;
        });
    }

    /// <summary>Polls the batch until it has ended and every line finished, with a progress bar on stderr.</summary>
    private static async Task<JsonElement> FollowAsync(CliContext context, Guid id, CancellationToken ct)
    {
        var batch = default(JsonElement);
        await context.Output.Progress.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async progress =>
            {
                var bar = progress.AddTask(Markup.Escape($"batch {id}"));
                while (true)
                {
                    batch = await context.Api.GetAsync($"/v1/batches/{id}", ct);
                    var (finished, total) = (Progress(batch, "finished"), Progress(batch, "total"));
                    bar.MaxValue = Math.Max(1, total);
                    bar.Value = finished;
                    if (Views.Text(batch, "status") != "running" && finished >= total)
                    {
                        return;
                    }

                    await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
                }
            });
        return batch;
    }

    private static int Progress(JsonElement batch, string field) => batch.GetProperty("progress").GetProperty(field).GetInt32();

    /// <summary>0 while the batch runs or when every line succeeded; 1 once a line was refused or ended without succeeding.</summary>
    private static int ForBatch(JsonElement batch)
    {
        var counts = batch.GetProperty("counts");
        var unsuccessful = new[] { "failed", "cancelled", "expired", "refused" }.Sum(s => counts.GetProperty(s).GetInt32());
        return unsuccessful > 0 || Views.Text(batch, "status") is "cancelled" or "expired" ? ExitCodes.JobFailed : ExitCodes.Ok;
    }

    /// <summary>The batch as a table: one row of its fields and counts.</summary>
    private static Table Batch(JsonElement batch)
    {
        var counts = batch.GetProperty("counts");
        var table = new Table().AddColumns("id", "status", "progress", "queued", "running", "succeeded", "failed", "cancelled", "expired", "refused", "device-s");
        table.AddRow(
            Markup.Escape(batch.GetProperty("id").ToString()), Markup.Escape(Views.Text(batch, "status") ?? ""),
            $"{Progress(batch, "finished")}/{Progress(batch, "total")}",
            $"{counts.GetProperty("queued")}", $"{counts.GetProperty("running")}", $"{counts.GetProperty("succeeded")}", $"{counts.GetProperty("failed")}",
            $"{counts.GetProperty("cancelled")}", $"{counts.GetProperty("expired")}", $"{counts.GetProperty("refused")}",
            $"{batch.GetProperty("cost").GetProperty("deviceSeconds").GetDouble():0.###}");
        return table;
    }
}
