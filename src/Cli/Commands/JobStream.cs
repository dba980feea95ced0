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

    /// <summary>
    /// How long a stream may send nothing, not even its ping (every 15 s), before it is taken for a
    /// dead connection (a proxy holding it open, an API that hung): the command fails instead of
    /// waiting for ever. <c>CQRSI_STREAM_SILENCE</c> (seconds) sets another bound.
    /// </summary>
    public static readonly TimeSpan SilentFor = TimeSpan.FromSeconds(
        double.TryParse(Environment.GetEnvironmentVariable("CQRSI_STREAM_SILENCE"), System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds > 0 ? seconds : 60);

    /// <summary>One event of the stream: its type (<c>status</c> or the event's wire name), its id if the API sent one, and its data.</summary>
    public sealed record Event(string Type, string? Id, JsonElement Data);

    /// <summary>
    /// Reads the stream to its end, handing each event to <paramref name="seen"/>; returns the job's
    /// last status (a job view). A stream that ends before the job does is an error.
    /// </summary>
    public static async Task<JsonElement> FollowAsync(ApiClient api, Guid id, Action<Event> seen, CancellationToken ct)
    {
        using var silence = CancellationTokenSource.CreateLinkedTokenSource(ct);
        silence.CancelAfter(SilentFor);
        await using var stream = await api.StreamAsync($"/v1/jobs/{id}/stream", silence.Token);
        JsonElement? last = null;
        var items = SseParser.Create(stream).EnumerateAsync(silence.Token).GetAsyncEnumerator(silence.Token);
        try
        {
            while (await items.MoveNextAsync())
            {
                silence.CancelAfter(SilentFor);
                last = Take(items.Current, seen) ?? last;
            }
        }
        catch (OperationCanceledException) when (silence.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new CliException($"The event stream of job {id} sent nothing for {SilentFor.TotalSeconds:0} s (the API pings every 15 s): "
                + $"the connection is dead or the API hung; `cqrsi watch {id}` follows it again.");
        }
        finally
        {
            await items.DisposeAsync();
        }

        var status = last is { } view ? view.GetProperty("status").GetString() : null;
        return status is not null && ExitCodes.Terminal.Contains(status)
            ? last!.Value
            : throw new CliException($"The event stream of job {id} ended before the job did (last status: {status ?? "none"}); `cqrsi watch {id}` follows it again.");
    }

    /// <summary>Hands one item of the stream to <paramref name="seen"/>; the job view when it is a status.</summary>
    private static JsonElement? Take(SseItem<string> item, Action<Event> seen)
    {
        if (item.EventType == Ping || string.IsNullOrWhiteSpace(item.Data))
        {
            return null;
        }

        var data = JsonDocument.Parse(item.Data).RootElement.Clone();
        seen(new Event(item.EventType, string.IsNullOrEmpty(item.EventId) ? null : item.EventId, data));
        return item.EventType == "status" ? data : null;
    }
}
