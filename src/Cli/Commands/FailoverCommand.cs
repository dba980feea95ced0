using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using CqrsInference.Cli.Output;
using Spectre.Console;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// <c>cqrsi failover &lt;lost-region&gt;</c>: the platform operator declares a region lost; the API
/// it calls (<c>--url</c>: an API of the surviving region) takes over the lost region's streams from
/// its standby mirrors (<c>POST /v1/admin/failover</c>) and answers what it copied.
/// </summary>
internal static class FailoverCommand
{
    public static Command Create(Cqrsi cqrsi)
    {
        var region = new Argument<string>("lost-region") { Description = "The region whose servers are lost (the API called is in the survivor)" };
        var failover = new Command("failover", "Take over a lost region's streams in the region of the API called (the platform operator only)") { region };
        return cqrsi.Handle(failover, async (context, ct) =>
        {
            var report = await context.Api.SendAsync(HttpMethod.Post, "/v1/admin/failover", new { lostRegion = context.Value(region) }, ct);
            context.Output.Write(report, Report);
            return ExitCodes.Ok;
        });
    }

    private static Markup Report(JsonElement report)
    {
        var copied = report.GetProperty("copied").EnumerateObject().Select(c => $"{c.Name} {c.Value.GetInt64().ToString(CultureInfo.InvariantCulture)}");
        var moved = report.GetProperty("checkpoints").EnumerateObject()
            .Select(c => $"{c.Name} {c.Value.GetProperty("from").GetUInt64().ToString(CultureInfo.InvariantCulture)} -> {c.Value.GetProperty("to").GetUInt64().ToString(CultureInfo.InvariantCulture)}");
        return new Markup(Markup.Escape(
            $"Region {Views.Text(report, "home")} is the home now.\n"
            + $"Copied: {string.Join(", ", copied)}.\n"
            + $"Jobs in the copied log: {Views.Text(report, "submissions")}, of which ended: {Views.Text(report, "endedJobs")} (the rest is the backlog).\n"
            + $"Recorder checkpoints: {string.Join(", ", moved)}.\n"));
    }
}
