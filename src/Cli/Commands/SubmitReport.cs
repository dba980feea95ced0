using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CqrsInference.Cli.Output;
using HdrHistogram;
using Spectre.Console;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// What <c>submit</c> reports: jobs by outcome, wall time, submit-to-end latency (HdrHistogram,
/// 3 significant digits) and jobs by the path that served them (<c>servedBy</c>: the interactive
/// path or the queue). For people a table on stdout, the job's id and region for a single job, and
/// the reasons jobs did not succeed on stderr; with <c>--output json</c> one object with every job
/// in the file's order (its last view, or the API's problem details when it was refused), its line
/// and the run's Idempotency-Key. A run that left jobs without an answer, or refused for now (429,
/// 5xx), says how to send them again without any job running twice (<see cref="SubmitRun.Again"/>).
/// </summary>
internal sealed class SubmitReport(IReadOnlyList<SubmitOutcome> outcomes, TimeSpan wall, SubmitRun run)
{
    /// <summary>How many of the reasons jobs did not succeed are listed for people (all are in <c>--output json</c>).</summary>
    private const int Listed = 5;

    /// <summary>The worst job's code: 2 if the service or caller was refused, else 1 if any job did not succeed, else 0.</summary>
    public int ExitCode => outcomes.Max(o => o.ExitCode);

    private int Succeeded => outcomes.Count(o => o.Status == "succeeded");

    public void Write(CliOutput output)
    {
        if (output.IsJson)
        {
            Console.Out.WriteLine(Json().ToJsonString(CliOutput.Indented));
            return;
        }

        output.Results.Write(Table());
        if (outcomes is [{ Id: { } id } one])
        {
            // One job: say where it ran (a file of jobs has the counts above).
            output.Results.WriteLine($"{id} {one.Status}, served by {one.ServedBy ?? "?"}, ran in region {Views.Text(one.Job, "ranInRegion") ?? "?"}");
        }

        var details = outcomes.Select(o => o.Detail).OfType<string>().Distinct().ToList();
        foreach (var detail in details.Take(Listed))
        {
            output.Note($"[red]{Markup.Escape(detail)}[/]");
        }

        if (details.Count > Listed)
        {
            output.Note($"[red]… and {details.Count - Listed} more (every job's in --output json)[/]");
        }

        if (ToSendAgain > 0)
        {
            output.Note($"{ToSendAgain} job(s) not answered, or refused for now. Send them again (the jobs already accepted are answered as they stand, not run twice):");
            output.Note(Markup.Escape(run.Again));
        }

        output.Results.WriteLine($"{Succeeded} succeeded, {outcomes.Count - Succeeded} not succeeded");
    }

    /// <summary>Jobs that the same command with the same key would still send: not answered, refused for now (429, 5xx), or not followed to their end.</summary>
    private int ToSendAgain => outcomes.Count(o => o.NotAnswered || o.HttpStatus is 429 or >= 500 || o.LostBecause is not null);

    /// <summary>The submit-to-end latency's p50 and p99 in milliseconds over the jobs that ended; none when no job did.</summary>
    public (double P50, double P99)? Latency()
    {
        var ended = outcomes.Where(o => o.HttpStatus is null && ExitCodes.Terminal.Contains(o.Status)).ToList();
        if (ended.Count == 0)
        {
            return null;
        }

        var histogram = new LongHistogram(TimeSpan.FromHours(1).Ticks / 10, 3);
        foreach (var outcome in ended)
        {
            histogram.RecordValue(Math.Max(1, outcome.Elapsed.Ticks / 10));
        }

        return (histogram.GetValueAtPercentile(50) / 1000.0, histogram.GetValueAtPercentile(99) / 1000.0);
    }

    private Table Table()
    {
        var table = new Table().AddColumn("outcome").AddColumn(new TableColumn("jobs").RightAligned());
        foreach (var (outcome, count) in Count(o => o.HttpStatus is { } refused ? $"{o.Status} ({refused})" : o.Status))
        {
            table.AddRow(Markup.Escape(outcome), Number(count));
        }

        if (outcomes.Sum(o => o.Retries) is > 0 and var retries)
        {
            table.AddRow("[grey]sent again (429, 503, connection lost)[/]", Number(retries));
        }

        table.AddRow("[grey]wall time[/]", string.Create(CultureInfo.InvariantCulture, $"{wall.TotalSeconds:F1} s"));
        if (Latency() is var (p50, p99))
        {
            table.AddRow("[grey]submit→done p50 / p99[/]", string.Create(CultureInfo.InvariantCulture, $"{p50:F0} / {p99:F0} ms"));
        }

        foreach (var (path, count) in Count(o => o.ServedBy))
        {
            table.AddRow($"[grey]served by {Markup.Escape(path)}[/]", Number(count));
        }

        return table;
    }

    private JsonObject Json()
    {
        var latency = Latency();
        return new JsonObject
        {
            ["submitted"] = outcomes.Count,
            ["succeeded"] = Succeeded,
            ["notSucceeded"] = outcomes.Count - Succeeded,
            ["byStatus"] = Counts(o => o.Status),
            ["servedBy"] = Counts(o => o.ServedBy),
            ["wallSeconds"] = Math.Round(wall.TotalSeconds, 3),
            ["idempotencyKey"] = run.Key,
            ["retries"] = outcomes.Sum(o => o.Retries),
            ["sendAgain"] = ToSendAgain > 0 ? run.Again : null,
            ["latencyMs"] = latency is var (p50, p99) ? new JsonObject { ["p50"] = p50, ["p99"] = p99 } : null,
            ["jobs"] = new JsonArray(outcomes.Select(Entry).ToArray<JsonNode?>()),
        };
    }

    private static JsonObject Entry(SubmitOutcome o) => new()
    {
        ["line"] = o.Line,
        ["id"] = o.Id,
        ["status"] = o.Status,
        ["httpStatus"] = o.HttpStatus,
        ["servedBy"] = o.ServedBy,
        ["ms"] = Math.Round(o.Elapsed.TotalMilliseconds, 1),
        ["retries"] = o.Retries,
        ["detail"] = o.Detail,
        [o.HttpStatus is null ? "job" : "problem"] = o.Job.ValueKind == JsonValueKind.Undefined ? null : JsonNode.Parse(o.Job.GetRawText()),
    };

    private IEnumerable<(string Key, int Count)> Count(Func<SubmitOutcome, string?> key) => outcomes
        .Select(key).OfType<string>().GroupBy(k => k).Select(g => (g.Key, g.Count())).OrderBy(g => g.Key, StringComparer.Ordinal);

    private JsonObject Counts(Func<SubmitOutcome, string?> key) => new(Count(key).Select(c => KeyValuePair.Create(c.Key, (JsonNode?)c.Count)));

    private static string Number(int count) => count.ToString(CultureInfo.InvariantCulture);
}
