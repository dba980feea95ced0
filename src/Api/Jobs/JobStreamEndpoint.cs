using System.Text.Json;
using CqrsInference.Api.Http;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;
using Marten;

namespace CqrsInference.Api.Jobs;

/// <summary>
/// <c>GET /v1/jobs/{id}/stream</c>: Server-Sent Events with the job's status now, then each
/// lifecycle event as it is stored and the status it leads to, until the job ends.
/// </summary>
internal static class JobStreamEndpoint
{
    public static async Task StreamAsync(Guid id, ApiCaller caller, IQuerySession session, JobReader jobs, JobEventFeed feed, HttpResponse response, CancellationToken ct)
    {
        // Listen first, then read the current state: nothing that happens in between is lost.
        using var follow = await feed.StartAsync(id, TimeSpan.FromSeconds(5), ct);
        var status = await jobs.FindAsync(session, id, caller.Tenant, ct);
        if (status is null)
        {
            await Problems.JobNotFound(id).ExecuteAsync(response.HttpContext);
            return;
        }

        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        await WriteEventAsync(response, "status", JsonSerializer.Serialize(JobView.From(status), JsonSerializerOptions.Web), ct);
        using var heartbeat = new PeriodicTimer(TimeSpan.FromSeconds(15));
        var next = follow.Events.ReadAsync(ct).AsTask();
        var beat = heartbeat.WaitForNextTickAsync(ct).AsTask();
        while (!JobLifecycle.IsTerminal(status.Status))
        {
            if (await Task.WhenAny(next, beat) == beat)
            {
                await response.WriteAsync(": keep-alive\n\n", ct);
                await response.Body.FlushAsync(ct);
                beat = heartbeat.WaitForNextTickAsync(ct).AsTask();
                continue;
            }

            var @event = await next;
            next = follow.Events.ReadAsync(ct).AsTask();
            if (JobStatusProjection.Evolve(status, @event) is not { } evolved)
            {
                continue;
            }

            status = evolved;
            await WriteEventAsync(response, EventNames.Of(@event), JsonSerializer.Serialize(@event, @event.GetType(), JsonSerializerOptions.Web), ct);
            await WriteEventAsync(response, "status", JsonSerializer.Serialize(JobView.From(status), JsonSerializerOptions.Web), ct);
        }
    }

    private static async Task WriteEventAsync(HttpResponse response, string type, string json, CancellationToken ct)
    {
        await response.WriteAsync($"event: {type}\ndata: {json}\n\n", ct);
        await response.Body.FlushAsync(ct);
    }
}
