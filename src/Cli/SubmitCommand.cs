using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;

namespace CqrsInference.Cli;

/// <summary>
/// Submits one job (a JSON file) or a file of jobs (JSON lines), at most <c>concurrency</c> at a time,
/// each waiting for its result (synchronous submit, then polling for the rare job that outlasts
/// the wait); shows a live progress bar and ends with a summary table that says which path served
/// the jobs (the interactive path or the durable queue). With <c>interactive</c> every job is sent
/// with <c>"mode":"interactive"</c>.
/// </summary>
internal static class SubmitCommand
{
    private static readonly string[] Terminal = ["succeeded", "failed", "cancelled", "expired"];

    public static async Task<int> RunAsync(ApiClient api, FileInfo file, bool lines, int concurrency, bool interactive, CancellationToken ct)
    {
        if (!file.Exists)
        {
            throw new CliException($"No such file: {file.FullName}");
        }

        var jobs = lines
            ? (await File.ReadAllLinesAsync(file.FullName, ct)).Where(l => l.Trim().Length > 0).ToList()
            : [await File.ReadAllTextAsync(file.FullName, ct)];
        if (interactive)
        {
            jobs = jobs.ConvertAll(job => JobBody.WithMode(job, JobBody.Interactive));
        }

        var outcomes = new ConcurrentBag<Outcome>();
        var wall = Stopwatch.StartNew();

        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var progress = context.AddTask($"{jobs.Count} job(s) from {file.Name}", maxValue: jobs.Count);
                await Parallel.ForEachAsync(jobs, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency), CancellationToken = ct }, async (json, token) =>
                {
                    outcomes.Add(await RunOneAsync(api, json, token));
                    progress.Increment(1);
                });
            });

        wall.Stop();
        var byStatus = outcomes.GroupBy(o => o.Status).ToDictionary(g => g.Key, g => g.Count());
        AnsiConsole.Write(Summary(outcomes, byStatus, wall.Elapsed));
        if (jobs.Count == 1 && outcomes.FirstOrDefault() is { Id: { } id } one)
        {
            // One job: say where it ran (a file of jobs has the counts above).
            Console.WriteLine($"{id} {one.Status}, served by {one.ServedBy ?? "?"}, ran in region {one.RanInRegion ?? "?"}");
        }

        foreach (var detail in outcomes.Where(o => o.Detail is not null).Select(o => o.Detail).Distinct().Take(5))
        {
            AnsiConsole.MarkupLine($"[red]{Markup.Escape(detail!)}[/]");
        }

        var succeeded = byStatus.GetValueOrDefault("succeeded");
        Console.WriteLine($"{succeeded} succeeded, {jobs.Count - succeeded} not succeeded");
        return succeeded == jobs.Count ? 0 : 1;
    }

    /// <summary>Jobs by outcome, wall time, latency, and jobs by the path that served them.</summary>
    private static Table Summary(IReadOnlyCollection<Outcome> outcomes, Dictionary<string, int> byStatus, TimeSpan wall)
    {
        var latencies = outcomes.Where(o => Terminal.Contains(o.Status)).Select(o => o.Ms).Order().ToList();
        var table = new Table().AddColumn("outcome").AddColumn(new TableColumn("jobs").RightAligned());
        foreach (var (status, count) in byStatus.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            table.AddRow(status, count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        table.AddRow("[grey]wall time[/]", $"{wall.TotalSeconds:F1} s");
        if (latencies.Count > 0)
        {
            table.AddRow("[grey]submit→done p50 / p99[/]", $"{Percentile(latencies, 50):F0} / {Percentile(latencies, 99):F0} ms");
        }

        foreach (var (path, count) in outcomes.Where(o => o.ServedBy is not null).GroupBy(o => o.ServedBy!).Select(g => (g.Key, g.Count())).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            table.AddRow($"[grey]served by {Markup.Escape(path)}[/]", count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return table;
    }

    private static async Task<Outcome> RunOneAsync(ApiClient api, string json, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var (status, body) = await api.SubmitAsync(json, TimeSpan.FromSeconds(30), ct);
        if (status is not (200 or 202))
        {
            var detail = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("title", out var title) ? title.GetString() : null;
            var errors = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("errors", out var e) ? " " + e.GetRawText() : "";
            return new Outcome($"rejected ({status})", watch.Elapsed.TotalMilliseconds, $"{status} {detail}{errors}");
        }

        var id = body.GetProperty("id").GetString();
        var servedBy = Text(body, "servedBy");
        var state = body.GetProperty("status").GetString() ?? "queued";
        while (!Terminal.Contains(state))
        {
            await Task.Delay(500, ct);
            (_, body) = await api.GetAsync($"/v1/jobs/{id}", ct);
            state = body.GetProperty("status").GetString() ?? state;
        }

        var error = state == "failed" && body.TryGetProperty("error", out var failure) && failure.ValueKind == JsonValueKind.Object
            ? $"{id}: {failure.GetProperty("message").GetString()}"
            : null;
        return new Outcome(state, watch.Elapsed.TotalMilliseconds, error, id, servedBy, Text(body, "ranInRegion"));
    }

    private static string? Text(JsonElement body, string name) =>
        body.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static double Percentile(List<double> sorted, int p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)];
}

/// <summary>
/// One job's end as the CLI saw it; <paramref name="ServedBy"/> is the submit answer's
/// (<c>interactive</c> or <c>queue</c>), as later reads of the job do not carry it.
/// </summary>
internal sealed record Outcome(string Status, double Ms, string? Detail, string? Id = null, string? ServedBy = null, string? RanInRegion = null);
