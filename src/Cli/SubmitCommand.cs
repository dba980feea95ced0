using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;

namespace CqrsInference.Cli;

/// <summary>
/// Submits one job (a JSON file) or a file of jobs (JSON lines), at most <c>concurrency</c> at a time,
/// each waiting for its result (synchronous submit, then polling for the rare job that outlasts
/// the wait); shows a live progress bar and ends with a summary table.
/// </summary>
internal static class SubmitCommand
{
    private static readonly string[] Terminal = ["succeeded", "failed", "cancelled", "expired"];

    public static async Task<int> RunAsync(ApiClient api, FileInfo file, bool lines, int concurrency, CancellationToken ct)
    {
        if (!file.Exists)
        {
            throw new CliException($"No such file: {file.FullName}");
        }

        var jobs = lines
            ? (await File.ReadAllLinesAsync(file.FullName, ct)).Where(l => l.Trim().Length > 0).ToList()
            : [await File.ReadAllTextAsync(file.FullName, ct)];
        var outcomes = new ConcurrentBag<(string Status, double Ms, string? Detail)>();
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
        var latencies = outcomes.Where(o => Terminal.Contains(o.Status)).Select(o => o.Ms).Order().ToList();
        var table = new Table().AddColumn("outcome").AddColumn(new TableColumn("jobs").RightAligned());
        foreach (var (status, count) in byStatus.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            table.AddRow(status, count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        table.AddRow("[grey]wall time[/]", $"{wall.Elapsed.TotalSeconds:F1} s");
        if (latencies.Count > 0)
        {
            table.AddRow("[grey]submit→done p50 / p99[/]", $"{Percentile(latencies, 50):F0} / {Percentile(latencies, 99):F0} ms");
        }

        AnsiConsole.Write(table);
        foreach (var detail in outcomes.Where(o => o.Detail is not null).Select(o => o.Detail).Distinct().Take(5))
        {
            AnsiConsole.MarkupLine($"[red]{Markup.Escape(detail!)}[/]");
        }

        var succeeded = byStatus.GetValueOrDefault("succeeded");
        Console.WriteLine($"{succeeded} succeeded, {jobs.Count - succeeded} not succeeded");
        return succeeded == jobs.Count ? 0 : 1;
    }

    private static async Task<(string Status, double Ms, string? Detail)> RunOneAsync(ApiClient api, string json, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var (status, body) = await api.SubmitAsync(json, TimeSpan.FromSeconds(30), ct);
        if (status is not (200 or 202))
        {
            var detail = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("title", out var title) ? title.GetString() : null;
            var errors = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("errors", out var e) ? " " + e.GetRawText() : "";
            return ($"rejected ({status})", watch.Elapsed.TotalMilliseconds, $"{status} {detail}{errors}");
        }

        var id = body.GetProperty("id").GetString();
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
        return (state, watch.Elapsed.TotalMilliseconds, error);
    }

    private static double Percentile(List<double> sorted, int p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)];
}
