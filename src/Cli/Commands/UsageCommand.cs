using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using CqrsInference.Cli.Output;
using Spectre.Console;

namespace CqrsInference.Cli.Commands;

/// <summary><c>cqrsi usage</c>: jobs, device time and cost per hour (<c>GET /v1/analytics/usage</c>).</summary>
internal static class UsageCommand
{
    private const int MaxHours = (400 * 24) - 1;

    public static Command Create(Cqrsi cqrsi)
    {
        var groupBy = new Option<string>("--group-by") { Description = "model,region,tenant,device", DefaultValueFactory = _ => "model,device" };
        // The API answers ranges of at most 400 days (and the hour after now is in the range).
        var hours = new Option<int>("--hours") { Description = "Look back this many hours", DefaultValueFactory = _ => 24 }
            .Within(1, MaxHours, $"--hours must be from 1 to {MaxHours} (400 days).");
        var usage = new Command("usage", "Jobs, device time and cost per hour") { groupBy, hours };
        return cqrsi.Handle(usage, async (context, ct) =>
        {
            var to = DateTimeOffset.UtcNow.AddHours(1);
            var from = DateTimeOffset.UtcNow.AddHours(-context.Value(hours));
            var body = await context.Api.GetAsync(
                $"/v1/analytics/usage?from={Uri.EscapeDataString(from.ToString("O", CultureInfo.InvariantCulture))}"
                + $"&to={Uri.EscapeDataString(to.ToString("O", CultureInfo.InvariantCulture))}&groupBy={Uri.EscapeDataString(context.Value(groupBy))}", ct);
            context.Output.Write(body, Table);
            return ExitCodes.Ok;
        });
    }

    private static Table Table(JsonElement body)
    {
        var table = new Table().AddColumns("hour", "model", "region", "tenant", "device", "submitted", "succeeded", "failed", "busy s", "cost", "run p99 ms");
        foreach (var r in Views.Rows(body))
        {
            table.AddRow(
                r.GetProperty("bucket").GetDateTimeOffset().ToString("MM-dd HH'h'", CultureInfo.InvariantCulture),
                Views.Cell(r, "model"), Views.Cell(r, "region"), Views.Cell(r, "tenant"), Views.Cell(r, "device"), Views.Cell(r, "submitted"),
                Views.Cell(r, "succeeded"), Views.Cell(r, "failed"), Views.Cell(r, "busySeconds"), Views.Cell(r, "cost"), Views.Cell(r, "runP99Ms"));
        }

        return table;
    }
}
