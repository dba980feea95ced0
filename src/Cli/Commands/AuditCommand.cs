using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// <c>cqrsi audit tail</c>: the auditors' event feed (<c>GET /v1/audit/events</c>, the key's tenant's
/// or, for the operator, <c>--tenant</c>'s) from a global sequence, page after page, and with <c>--follow</c> on as new events are stored (the feed has no
/// push, so a follower asks again each second once it has read everything). With <c>--output json</c>,
/// one JSON line per event, as the feed gives it.
/// </summary>
internal static class AuditCommand
{
    private static readonly TimeSpan FollowInterval = TimeSpan.FromSeconds(1);

    public static Command Create(Cqrsi cqrsi)
    {
        var fromSequence = new Option<long>("--from-sequence") { Description = "Start at this global sequence", DefaultValueFactory = _ => 0 };
        var follow = new Option<bool>("--follow") { Description = "Keep waiting for new events" };
        var tenant = new Option<string?>("--tenant") { Description = "Another tenant's feed (the platform operator's key only; the key's own tenant when left out)" };
        var tail = new Command("tail", "Print the audit feed, from a sequence, optionally following it") { fromSequence, follow, tenant };
        cqrsi.Handle(tail, async (context, ct) =>
        {
            var next = context.Value(fromSequence);
            var of = context.Parse.GetValue(tenant) is { } named ? $"&tenant={Uri.EscapeDataString(named)}" : "";
            while (true)
            {
                var page = await context.Api.GetAsync($"/v1/audit/events?fromSequence={next}&limit=1000{of}", ct);
                foreach (var e in page.GetProperty("events").EnumerateArray())
                {
                    context.Output.WriteLine(e, () => Markup.Escape(Line(e)));
                    next = e.GetProperty("sequence").GetInt64() + 1;
                }

                if (page.GetProperty("nextSequence").ValueKind == JsonValueKind.Null)
                {
                    if (!context.Value(follow))
                    {
                        return ExitCodes.Ok;
                    }

                    await Task.Delay(FollowInterval, ct);
                }
            }
        });
        return new Command("audit", "The auditors' event feed") { tail };
    }

    private static string Line(JsonElement e) => string.Create(CultureInfo.InvariantCulture,
        $"{e.GetProperty("sequence").GetInt64(),10} {e.GetProperty("timestamp").GetDateTimeOffset():O} {e.GetProperty("type").GetString(),-24} {e.GetProperty("streamId").GetGuid()} v{e.GetProperty("version").GetInt64()}");
}
