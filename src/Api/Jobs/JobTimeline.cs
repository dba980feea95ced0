using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;

namespace CqrsInference.Api.Jobs;

/// <summary>
/// Where one SSE stream of a job stands: the status it has sent and the id of every event folded
/// into it. An event's SSE id is the id it is recorded under (<see cref="JobLifecycle.EventId"/>, the
/// <c>id</c> of <c>GET /v1/jobs/{id}/events</c>), the same whether the event comes from the log or
/// from PostgreSQL, so a stream resumed with <c>Last-Event-ID</c> sends exactly the recorded events
/// after that one, and never an event twice. A status carries the id of the last event folded into
/// it. Pure: the endpoint reads and writes.
/// </summary>
internal sealed class JobTimeline
{
    private readonly HashSet<Guid> _seen;

    private JobTimeline(JobStatus status, Guid? lastEventId, HashSet<Guid> seen) => (Status, LastEventId, _seen) = (status, lastEventId, seen);

    /// <summary>One event to send, with the status it led to.</summary>
    public sealed record Step(Guid EventId, object Event, JobStatus Status);

    public JobStatus Status { get; private set; }

    /// <summary>The id of the last event folded into <see cref="Status"/>; null when none is recorded yet.</summary>
    public Guid? LastEventId { get; private set; }

    public bool Ended => JobLifecycle.IsTerminal(Status.Status);

    /// <summary>
    /// A stream's start from the job's recorded events (<paramref name="current"/>, the job as
    /// <see cref="JobReader"/> found it, when none are: a job accepted moments ago, or archived; or when
    /// it has ended and its ending is not recorded yet). Fresh (<paramref name="resumeAfter"/> null), nothing is missed:
    /// the stream sends the status now. Resumed, it sends each recorded event after the client's last one
    /// with the status it led to. A last id that is not recorded (yet: the client saw it on the log a
    /// moment ago) counts as seen, with everything recorded before it.
    /// </summary>
    public static (JobTimeline Timeline, IReadOnlyList<Step> Missed) Start(
        JobStatus current, IReadOnlyList<(Guid Id, object Event)> recorded, Guid? resumeAfter)
    {
        var resumeAt = resumeAfter is { } last ? IndexOf(recorded, last) : recorded.Count - 1;
        var seen = recorded.Select(e => e.Id).ToHashSet();
        if (resumeAfter is { } unknown)
        {
            seen.Add(unknown);
        }

        JobStatus? status = null;
        var missed = new List<Step>();
        for (var i = 0; i < recorded.Count; i++)
        {
            status = JobStatusProjection.Evolve(status, recorded[i].Event) ?? status;
            if (i > resumeAt && status is not null && !JobLifecycle.IsShadow(recorded[i].Event))
            {
                missed.Add(new Step(recorded[i].Id, recorded[i].Event, status));
            }
        }

        // A job this API saw end whose ending is not recorded yet reads as ended, as JobReader answers it.
        var now = status is null || (JobLifecycle.IsTerminal(current.Status) && !JobLifecycle.IsTerminal(status.Status)) ? current : status;
        var lastId = recorded.Count > 0 ? recorded[^1].Id : (Guid?)null;
        return (new JobTimeline(now, lastId, seen), missed);
    }

    /// <summary>An event from the log: the step to send, or null when it was sent (or recorded) before or changes nothing.</summary>
    public Step? Take(object @event)
    {
        var id = JobLifecycle.EventId(@event);
        if (_seen.Contains(id) || !JobStatusProjection.Changes(Status, @event) || JobStatusProjection.Evolve(Status, @event) is not { } next)
        {
            return null;
        }

        _seen.Add(id);
        (Status, LastEventId) = (next, id);
        return new Step(id, @event, next);
    }

    /// <summary>Where the client's last event is among the recorded ones; past the end when it is not recorded.</summary>
    private static int IndexOf(IReadOnlyList<(Guid Id, object Event)> recorded, Guid id)
    {
        for (var i = 0; i < recorded.Count; i++)
        {
            if (recorded[i].Id == id)
            {
                return i;
            }
        }

        return recorded.Count;
    }
}
