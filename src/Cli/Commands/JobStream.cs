using System.Net.ServerSentEvents;
using System.Text.Json;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// A job's Server-Sent Events (<c>GET /v1/jobs/{id}/stream</c>), read with the framework's
/// <see cref="SseParser"/>: its status now, then each lifecycle event and the status it leads to,
/// until the job ends. What <c>watch</c> prints and what <c>submit</c> waits on for a job that
/// outlasts the synchronous submit, so neither polls. Keep-alives (<c>ping</c> events, comments)
/// are skipped.
/// </summary>
internal static class JobStream
{
    /// <summary>What an idle stream sends to keep the connection open; it carries nothing to show.</summary>
    public const string Ping = "ping";

    /// <summary>One event of the stream: its type (<c>status</c> or the event's wire name), its id if the API sent one, and its data.</summary>
    public sealed record Event(string Type, string? Id, JsonElement Data);

    /// <summary>
    /// Reads the stream to its end, handing each event to <paramref name="seen"/>; returns the job's
    /// last status (a job view). A stream that ends before the job does is an error.
    /// </summary>
    public static async Task<JsonElement> FollowAsync(ApiClient api, Guid id, Action<Event> seen, CancellationToken ct)
    {
        await using var stream = await api.StreamAsync($"/v1/jobs/{id}/stream", ct);
        JsonElement? last = null;
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(ct))
        {
            if (item.EventType == Ping || string.IsNullOrWhiteSpace(item.Data))
            {
                continue;
            }

            var data = JsonDocument.Parse(item.Data).RootElement.Clone();
            if (item.EventType == "status")
            {
                last = data;
            }

            seen(new Event(item.EventType, string.IsNullOrEmpty(item.EventId) ? null : item.EventId, data));
        }

        var status = last is { } view ? view.GetProperty("status").GetString() : null;
        return status is not null && ExitCodes.Terminal.Contains(status)
            ? last!.Value
            : throw new CliException($"The event stream of job {id} ended before the job did (last status: {status ?? "none"}); `cqrsi watch {id}` follows it again.");
    }
}
