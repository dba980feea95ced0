using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Webhooks;

namespace CqrsInference.Projections.Recording.JobLog;

/// <summary>What the recorder knows of a job's stream: its version, its status document and the ids of its recorded events.</summary>
internal sealed record JobStream(long Version, JobStatus.JobStatus Status, IReadOnlySet<Guid> EventIds);

/// <summary>An event to append: the row it becomes in the event table.</summary>
internal sealed record AppendedEvent(Guid Id, Guid StreamId, long Version, object Event);

/// <summary>Why an event of the run is not appended.</summary>
internal enum DropReason
{
    /// <summary>Recorded already (the same event reached the log twice).</summary>
    Duplicate,

    /// <summary>
    /// Its job had ended (the first ending stands), or it belongs to another attempt series than the
    /// job's current one (a late event of an earlier series; a retry the job is not ready for).
    /// </summary>
    AfterEnd,

    /// <summary>No submission of its job is recorded or in the run.</summary>
    Orphan,
}

/// <summary>
/// What a run of the job log becomes, decided without I/O from the run and what is known of its jobs'
/// streams: the streams it starts, the events it appends (in log order, each with its version), the
/// status document of every job it touches, and what it drops and why. The rules: a submission starts
/// the job's stream (once); every other event needs the job's submission recorded or earlier in the
/// run; an event already recorded is dropped; once a job has ended (<see cref="JobLifecycle"/>) its
/// later events are dropped, except the retry that begins its next attempt series and a shadow run's
/// result (<see cref="JobLifecycle.IsShadow"/>, which changes nothing), and an event of
/// another series than the job's current one is dropped. The status is the projection's own fold.
/// </summary>
internal sealed class RecordingPlan
{
    private readonly Dictionary<Guid, JobStream> _streams;

    private RecordingPlan(IReadOnlyDictionary<Guid, JobStream> known) => _streams = new Dictionary<Guid, JobStream>(known);

    public List<Guid> Started { get; } = [];

    public List<AppendedEvent> Appended { get; } = [];

    public List<(LogEvent Event, DropReason Why)> Dropped { get; } = [];

    /// <summary>Every stream the run touched, as it stands after the run.</summary>
    public Dictionary<Guid, JobStream> Touched { get; } = [];

    /// <summary>The jobs that ended in this run, with the event that ended them.</summary>
    public List<(Guid JobId, object Event)> Ended { get; } = [];

    /// <summary>
    /// The jobs that began running in this run: their first start, from a <see cref="V1.JobStarted"/>
    /// or from the start an attempt's ending carries (a short run publishes no separate start).
    /// </summary>
    public List<Guid> BeganRunning { get; } = [];

    public static RecordingPlan Make(IEnumerable<LogEvent> jobEvents, IReadOnlyDictionary<Guid, JobStream> known)
    {
        var plan = new RecordingPlan(known);
        foreach (var e in jobEvents)
        {
            plan.Take(e);
        }

        return plan;
    }

    private void Take(LogEvent e)
    {
        var exists = _streams.TryGetValue(e.StreamId, out var stream);
        if (e.Event is V1.JobSubmitted submitted)
        {
            if (exists)
            {
                Dropped.Add((e, DropReason.Duplicate));
                return;
            }

            Started.Add(e.StreamId);
            Append(e, new JobStream(0, JobStatus.JobStatusProjection.Create(submitted), new HashSet<Guid>()), JobStatus.JobStatusProjection.Create(submitted));
            return;
        }

        // A shadow result changes no job but is recorded whatever its status: after its ending, as a rule.
        DropReason? why = !exists ? DropReason.Orphan
            : stream!.EventIds.Contains(e.EventId) ? DropReason.Duplicate
            : !JobLifecycle.IsShadow(e.Event) && !JobStatus.JobStatusProjection.Changes(stream.Status, e.Event) ? DropReason.AfterEnd
            : null;
        if (why is { } dropped)
        {
            Dropped.Add((e, dropped));
            return;
        }

        var after = JobStatus.JobStatusProjection.Evolve(stream!.Status, e.Event)!;
        Append(e, stream, after);
        if (stream.Status.StartedAt is null && after.StartedAt is not null)
        {
            BeganRunning.Add(e.StreamId);
        }

        if (JobLifecycle.IsTerminal(e.Event))
        {
            Ended.Add((e.StreamId, e.Event));
        }
    }

    /// <summary>
    /// The webhook calls the run owes (<see cref="WebhookEvents"/>): a start for each job that began
    /// running and asked for <c>started</c>, an ending for each job that ended and asked for
    /// <c>completed</c> (every job with a webhook that names no filter).
    /// </summary>
    public IEnumerable<WebhookOwed> WebhooksOwed()
    {
        var starts = BeganRunning.Select(id => (Status: Touched[id].Status, Type: EventNames.JobStarted));
        var endings = Ended.Select(e => (Status: Touched[e.JobId].Status, Type: EventNames.Of(e.Event)));
        return starts.Concat(endings)
            .Where(owed => owed.Status.Webhook is not null && WebhookEvents.Wants(owed.Status.WebhookEvents, WebhookEvents.KindOf(owed.Type)))
            .Select(owed => new WebhookOwed(owed.Status.Id, owed.Type, owed.Status.Tenant, owed.Status.Retries > 0 ? owed.Status.CurrentSeries() : null));
    }

    private void Append(LogEvent e, JobStream before, JobStatus.JobStatus after)
    {
        var ids = new HashSet<Guid>(before.EventIds) { e.EventId };
        var next = new JobStream(before.Version + 1, after, ids);
        _streams[e.StreamId] = next;
        Touched[e.StreamId] = next;
        Appended.Add(new AppendedEvent(e.EventId, e.StreamId, next.Version, e.Event));
    }
}
