using System.CommandLine;
using System.Text.Json;
using CqrsInference.Cli.Output;
using Spectre.Console;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// <c>cqrsi backtest start|status</c>: run a model's recorded jobs of a window again on a candidate
/// version (<c>POST /v1/admin/backtests</c>, the operator's key) and read its report. Exit 1 when a
/// completed backtest found differences, or the backtest failed.
/// </summary>
internal static class BacktestCommands
{
    public static Command Create(Cqrsi cqrsi) => new("backtest", "Backtests: recorded jobs run again on a candidate version (operator)")
    {
        Start(cqrsi),
        Status(cqrsi),
    };

    private static Command Start(Cqrsi cqrsi)
    {
        var model = new Argument<string>("model") { Description = "The model whose recorded jobs run again" };
        var version = new Argument<string>("candidate-version") { Description = "The version they run on" };
        var from = new Option<string>("--from") { Description = "Start of the window of submissions (RFC 3339), inclusive", Required = true };
        var to = new Option<string>("--to") { Description = "End of the window (RFC 3339), exclusive", Required = true };
        var tenants = new Option<string[]>("--tenant") { Description = "Only this tenant's jobs (repeatable)", AllowMultipleArgumentsPerToken = true };
        var limit = new Option<int?>("--limit") { Description = "At most this many jobs, oldest first (1 to 10000, default 1000)" };
        var wait = new Option<bool>("--wait") { Description = "Wait until the backtest ends" };
        var start = new Command("start", "Start a backtest; with --wait, exit 1 if it found differences, failed, or compared nothing") { model, version, from, to, tenants, limit, wait };
        return cqrsi.Handle(start, async (context, ct) =>
        {
            var named = context.Parse.GetValue(tenants);
            var report = await context.Api.SendAsync(HttpMethod.Post, "/v1/admin/backtests", new
            {
                model = context.Value(model),
                candidateVersion = context.Value(version),
                from = context.Parse.GetValue(from),
                to = context.Parse.GetValue(to),
                tenants = named is { Length: > 0 } ? named : null,
                limit = context.Parse.GetValue(limit),
            }, ct);
            if (context.Parse.GetValue(wait))
            {
                report = await FollowAsync(context, report.GetProperty("id").GetGuid(), ct);
            }

            context.Output.Write(report, Report);
            return ForReport(context, report);
        });
    }

    private static Command Status(Cqrsi cqrsi)
    {
        var id = new Argument<Guid>("id") { Description = "The backtest's id" };
        var status = new Command("status", "One backtest's progress and report; exit 1 if it found differences, failed, or ended having compared nothing") { id };
        return cqrsi.Handle(status, async (context, ct) =>
        {
            var report = await context.Api.GetAsync($"/v1/admin/backtests/{context.Value(id)}", ct);
            context.Output.Write(report, Report);
            return ForReport(context, report);
        });
    }

    private static async Task<JsonElement> FollowAsync(CliContext context, Guid id, CancellationToken ct)
    {
        while (true)
        {
            var report = await context.Api.GetAsync($"/v1/admin/backtests/{id}", ct);
            if (Views.Text(report, "status") is "completed" or "failed")
            {
                return report;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
        }
    }

    /// <summary>
    /// 1 when the backtest failed, found differences, or ended having compared nothing (a window with
    /// no recorded job of the model: "no differences" would pass a release gate on no evidence).
    /// </summary>
    private static int ForReport(CliContext context, JsonElement report)
    {
        var status = Views.Text(report, "status");
        if (status == "completed" && report.GetProperty("compared").GetInt32() == 0)
        {
            var skipped = report.TryGetProperty("skipped", out var reasons) && reasons.ValueKind == JsonValueKind.Object
                ? string.Join(", ", reasons.EnumerateObject().Select(r => $"{r.Value} {r.Name}"))
                : "";
            context.Output.Note(skipped.Length == 0
                ? "[yellow]The backtest compared no job:[/] its window held no recorded job of the model to run again (check --from, --to and --tenant)."
                : $"[yellow]The backtest compared no job:[/] every job of its window was skipped ({Markup.Escape(skipped)}).");
            return ExitCodes.JobFailed;
        }

        return status == "failed" || report.GetProperty("different").GetInt32() > 0 ? ExitCodes.JobFailed : ExitCodes.Ok;
    }

    /// <summary>The report as a table: counts, run times and cost of both sides.</summary>
    private static Table Report(JsonElement report)
    {
        var table = new Table().AddColumns("id", "status", "model", "candidate", "compared", "identical", "different", "skipped", "p50 ms (rec/cand)", "cost diff");
        string Ms(string side) => $"{report.GetProperty(side).GetProperty("runP50Ms")}";
        var skipped = report.GetProperty("skipped").EnumerateObject().Sum(p => p.Value.GetInt32());
        table.AddRow(
            Markup.Escape(report.GetProperty("id").ToString()), Markup.Escape(Views.Text(report, "status") ?? ""), Markup.Escape(Views.Text(report, "model") ?? ""),
            Markup.Escape(Views.Text(report, "candidateVersion") ?? ""), $"{report.GetProperty("compared")}", $"{report.GetProperty("identical")}",
            $"{report.GetProperty("different")}", $"{skipped}", Markup.Escape($"{Ms("recorded")}/{Ms("candidate")}"), $"{report.GetProperty("costDifference")}");
        return table;
    }
}
