using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using CqrsInference.Api.Http;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs;
using Marten;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace CqrsInference.Api.Jobs;

/// <summary>
/// <c>GET /v1/jobs/{id}/stream</c>: Server-Sent Events (<see cref="TypedResults.ServerSentEvents{T}(IAsyncEnumerable{SseItem{T}})"/>)
/// with the job's status now, then each lifecycle event as it is stored and the status it leads to,
/// until the job ends. Every event carries an <c>id</c> (<see cref="JobTimeline"/>), so a client that
/// loses the connection resumes with <c>Last-Event-ID</c> and gets what it missed, as browsers'
/// <c>EventSource</c> does by itself. A <c>ping</c> event without data keeps an idle connection open.
/// </summary>
internal static class JobStreamEndpoint
{
    public const string LastEventIdHeader = "Last-Event-ID";
    public const string StatusEvent = "status";
    public const string PingEvent = "ping";

    /// <summary>How often an idle stream sends <see cref="PingEvent"/>, so that proxies keep it open.</summary>
    public static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static async Task<Results<ServerSentEventsResult<object?>, ProblemHttpResult>> StreamAsync(
        Guid id, [FromHeader(Name = LastEventIdHeader)] string? lastEventId, ApiCaller caller, IQuerySession session, JobReader jobs, JobEventFeed feed,
        StreamKeys keys, Hosting.TenantStreamLimiter streams, HttpResponse response, CancellationToken ct)
    {
        Guid? resumeAfter = null;
        if (lastEventId is not null)
        {
            if (!Guid.TryParse(lastEventId, out var last))
            {
                return Problems.Validation(LastEventIdHeader, $"{LastEventIdHeader} must be the id of an event this stream sent (a UUID).");
            }

            resumeAfter = last;
        }

        if (streams.Open(caller, response) is { } tooMany)
        {
            return tooMany;
        }

        // Listen first, then read what is recorded: nothing that happens in between is lost.
        var follow = await feed.StartAsync(id, TimeSpan.FromSeconds(5), ct);
        response.RegisterForDispose(follow);
        var status = await jobs.FindAsync(session, id, caller, ct);
        if (status is null)
        {
            return Problems.JobNotFound(id);
        }

        var recorded = await RecordedAsync(session, status, ct);
        var (timeline, missed) = JobTimeline.Start(status, recorded, resumeAfter);
        response.Headers.CacheControl = "no-cache";
        return TypedResults.ServerSentEvents(keys.WhileValidAsync(caller, EventsAsync(timeline, missed, follow, () => RecordedAsync(session, status, ct), ct), ct));
    }

    /// <summary>
    /// The job's recorded events. None for an archived job (it keeps its summary only: the stream
    /// sends it and ends), nor while PostgreSQL is away (the stream starts from the job as this API
    /// holds it, as <c>GET /v1/jobs/{id}</c> answers it then).
    /// </summary>
    private static async Task<IReadOnlyList<(Guid Id, object Event)>> RecordedAsync(IQuerySession session, Projections.JobStatus.JobStatus status, CancellationToken ct)
    {
        if (status.ArchivedAt is not null)
        {
            return [];
        }

        try
        {
            return (await session.Events.FetchStreamAsync(status.Id, token: ct)).Select(e => (e.Id, e.Data)).ToList();
        }
        catch (Exception e) when (Projections.Outages.IsOutage(e))
        {
            return [];
        }
    }

    private static async IAsyncEnumerable<SseItem<object?>> EventsAsync(
        JobTimeline timeline, IReadOnlyList<JobTimeline.Step> missed, JobEventFeed.Follow follow,
        Func<Task<IReadOnlyList<(Guid Id, object Event)>>> recorded, [EnumeratorCancellation] CancellationToken ct)
    {
        using var _ = follow;
        foreach (var step in missed)
        {
            yield return Lifecycle(step);
            yield return Status(step.Status, step.EventId);
        }

        if (missed.Count == 0)
        {
            yield return Status(timeline.Status, timeline.LastEventId);
        }

        using var heartbeat = new PeriodicTimer(KeepAlive);
        var next = follow.Events.ReadAsync(ct).AsTask();
        var beat = heartbeat.WaitForNextTickAsync(ct).AsTask();
        while (!timeline.Ended)
        {
            if (await Task.WhenAny(next, beat) == beat)
            {
                yield return new SseItem<object?>(null, PingEvent);
                beat = heartbeat.WaitForNextTickAsync(ct).AsTask();

                // The feed carries what the log stores after the stream began; an ending stored just
                // before it, and not recorded yet when the stream read the job, reaches the stream
                // from the store: looked at again on each keep-alive (events already sent are skipped).
                foreach (var (_, stored) in await recorded())
                {
                    if (timeline.Take(stored) is { } caught)
                    {
                        yield return Lifecycle(caught);
                        yield return Status(caught.Status, caught.EventId);
                    }
                }

                continue;
            }

            var @event = await next;
            next = follow.Events.ReadAsync(ct).AsTask();
            if (timeline.Take(@event) is { } step)
            {
                yield return Lifecycle(step);
                yield return Status(step.Status, step.EventId);
            }
        }
    }

    private static SseItem<object?> Lifecycle(JobTimeline.Step step) =>
        new(step.Event, EventNames.Of(step.Event)) { EventId = step.EventId.ToString() };

    private static SseItem<object?> Status(Projections.JobStatus.JobStatus status, Guid? eventId) =>
        new(JobView.From(status), StatusEvent) { EventId = eventId?.ToString() };
}
