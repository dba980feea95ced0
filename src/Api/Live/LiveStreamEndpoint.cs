using System.Globalization;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using CqrsInference.Api.Analytics;
using CqrsInference.Api.Http;
using CqrsInference.Api.Jobs;
using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Models;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace CqrsInference.Api.Live;

/// <summary>
/// <c>GET /v1/events/stream</c>: Server-Sent Events for the dashboard, instead of polling. Each
/// second at most (coalesced): <c>jobs</c> (each job that changed, its latest status), <c>queues</c>
/// (the depths, as <c>GET /v1/analytics/queues</c>, when they changed), <c>processors</c> (as
/// <c>GET /v1/analytics/processors</c>, when they changed); <c>resync</c> when the stream could not
/// keep up or resume (read everything again); <c>ping</c> while idle. Every <c>jobs</c> event carries
/// the log's sequence as its id, so a client resumes with <c>Last-Event-ID</c>.
/// </summary>
internal static class LiveStreamEndpoint
{
    public const string HelloEvent = "hello";
    public const string JobsEvent = "jobs";
    public const string QueuesEvent = "queues";
    public const string ProcessorsEvent = "processors";
    public const string ResyncEvent = "resync";

    /// <summary>A job change as the stream sends it.</summary>
    public sealed record JobChangeView(Guid Id, string? Tenant, string Model, string Region, string Event, string Status, DateTimeOffset At);

    public static IEndpointRouteBuilder MapLiveApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/events/stream", Stream)
            .WithTags("Analytics")
            .WithName("StreamEvents")
            .WithSummary("Server-Sent Events for the dashboard: the caller's jobs as they change, queue depths and processors, at most each second")
            .WithDescription("The jobs of the caller's tenant (every tenant's for the operator); queue depths with the analyst role (the tenant's own); "
                + "processors for the operator. 'hello' first; then 'jobs' ({\"changes\": [{id, tenant, model, region, event, status, at}]}, with the log's sequence as the event id), "
                + "'queues' and 'processors' (as GET /v1/analytics/queues and /processors) when they change, 'resync' when the client must read everything again "
                + "(it fell behind, or Last-Event-ID is older than this API holds), 'ping' while idle.")
            .ProducesText(StatusCodes.Status200OK, ApiContract.EventStream,
                "Server-Sent Events: 'hello', then 'jobs', 'queues', 'processors', 'resync' as they happen (at most each second), 'ping' while idle.")
            .WithProblems((StatusCodes.Status422UnprocessableEntity, "Last-Event-ID is not the id of an event this stream sent."),
                (StatusCodes.Status429TooManyRequests, "The tenant holds Api:Streams:PerTenant streams open on this instance."))
            .RequirePolicy(ApiPolicies.Read);
        return app;
    }

    public static Results<ServerSentEventsResult<object?>, ProblemHttpResult> Stream(
        [FromHeader(Name = JobStreamEndpoint.LastEventIdHeader)] string? lastEventId, ApiCaller caller, LiveFeed feed, ModelCatalog catalog,
        StreamKeys keys, Hosting.TenantStreamLimiter streams, HttpResponse response, CancellationToken ct)
    {
        ulong? after = null;
        if (lastEventId is not null)
        {
            if (!ulong.TryParse(lastEventId, NumberStyles.None, CultureInfo.InvariantCulture, out var last))
            {
                return Problems.Validation(JobStreamEndpoint.LastEventIdHeader,
                    $"{JobStreamEndpoint.LastEventIdHeader} must be the id of an event this stream sent (a whole number).");
            }

            after = last;
        }

        if (streams.Open(caller, response) is { } tooMany)
        {
            return tooMany;
        }

        var subscription = feed.Subscribe(new LiveView(caller), after);
        response.RegisterForDispose(subscription);
        response.Headers.CacheControl = "no-cache";
        return TypedResults.ServerSentEvents(keys.WhileValidAsync(caller, EventsAsync(subscription, catalog, after is not null, ct), ct));
    }

    private static async IAsyncEnumerable<SseItem<object?>> EventsAsync(
        LiveSubscription subscription, ModelCatalog catalog, bool resumed, [EnumeratorCancellation] CancellationToken ct)
    {
        using var _ = subscription;
        var view = subscription.View;
        yield return new SseItem<object?>(new { resumed, tenant = view.Caller.IsOperator ? null : view.Caller.Tenant, queues = view.Queues, processors = view.Processors }, HelloEvent);
        using var tick = new PeriodicTimer(LiveFeed.SnapshotInterval);
        var sent = new Sent();
        var idle = 0;
        do
        {
            var items = Items(subscription.Take(), view, catalog, sent).ToList();
            idle = items.Count == 0 ? idle + 1 : 0;
            foreach (var item in items)
            {
                yield return item;
            }

            if (idle * LiveFeed.SnapshotInterval >= JobStreamEndpoint.KeepAlive)
            {
                idle = 0;
                yield return new SseItem<object?>(null, JobStreamEndpoint.PingEvent);
            }
        }
        while (await tick.WaitForNextTickAsync(ct));
    }

    /// <summary>What was sent last of the snapshots, so that an unchanged one is not sent again.</summary>
    private sealed class Sent
    {
        public string? Queues { get; set; }

        public string? Processors { get; set; }
    }

    private static IEnumerable<SseItem<object?>> Items(LiveSubscription.Batch batch, LiveView view, ModelCatalog catalog, Sent sent)
    {
        if (batch.Overflowed)
        {
            // Whatever was dropped, the snapshots sent so far say nothing: send them again with the next ones.
            (sent.Queues, sent.Processors) = (null, null);
            yield return new SseItem<object?>(new { reason = "the stream fell behind, or could not resume from Last-Event-ID: read the jobs again" }, ResyncEvent);
        }

        if (batch.Changes.Count > 0)
        {
            var changes = batch.Changes.Select(c => new JobChangeView(c.Job, c.Tenant, c.Model, c.Region, c.Event, c.Status, c.At)).ToList();
            yield return new SseItem<object?>(new { changes }, JobsEvent) { EventId = batch.Changes[^1].Sequence.ToString(CultureInfo.InvariantCulture) };
        }

        if (batch.Queues is { } states)
        {
            var rows = AnalyticsApi.QueueDepths([.. states.Where(view.Sees)], catalog);
            if (Changed(rows, sent.Queues, out var json))
            {
                sent.Queues = json;
                yield return new SseItem<object?>(rows, QueuesEvent);
            }
        }

        if (batch.Processors is { } processors && Changed(processors, sent.Processors, out var list))
        {
            sent.Processors = list;
            yield return new SseItem<object?>(processors, ProcessorsEvent);
        }
    }

    private static bool Changed<T>(T value, string? before, out string json)
    {
        json = JsonSerializer.Serialize(value);
        return json != before;
    }
}
