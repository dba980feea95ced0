using System.CommandLine;
using System.Globalization;
using CqrsInference.Cli.Output;
using Spectre.Console;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// <c>cqrsi watch &lt;id&gt;</c>: one job's events as they are stored, until it ends; exits 0 when it
/// succeeded and 1 when it failed, expired or was cancelled. With <c>--output json</c>, one JSON
/// line per event: <c>{"event", "id", "data"}</c>.
/// </summary>
internal static class WatchCommand
{
    public static Command Create(Cqrsi cqrsi)
    {
        var id = JobCommands.JobId();
        var watch = new Command("watch", "Follow one job's events until it ends (Server-Sent Events); exit 1 if it did not succeed") { id };
        return cqrsi.Handle(watch, async (context, ct) =>
        {
            var output = context.Output;
            var last = await JobStream.FollowAsync(context.Api, context.Value(id), e => output.WriteLine(
                new { @event = e.Type, id = e.Id, data = e.Data },
                () => $"[grey]{DateTime.Now.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)}[/] [blue]{Markup.Escape(e.Type)}[/] {Summary(e)}"), ct);
            var status = last.GetProperty("status").GetString();
            if (Views.Text(last, "error") is { } error)
            {
                output.Note($"[red]{Markup.Escape(error)}[/]");
            }

            return ExitCodes.ForJob(status);
        });
    }

    private static string Summary(JobStream.Event e) => e.Type == "status"
        ? $"[bold]{Markup.Escape(e.Data.GetProperty("status").GetString() ?? "")}[/] attempts {e.Data.GetProperty("attempts").GetInt32()}"
        : Markup.Escape(e.Data.GetRawText());
}
