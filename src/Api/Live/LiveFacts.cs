using CqrsInference.Commands.Jobs;

namespace CqrsInference.Api.Live;

/// <summary>
/// A job's status changed, as the event log stored it: what the dashboard's live stream sends.
/// <paramref name="Tenant"/> is null until known (a lifecycle event's subject carries no tenant;
/// <see cref="JobTenants"/> fills it in). <paramref name="Sequence"/> is the log's stream sequence.
/// </summary>
internal sealed record JobChange(Guid Job, string? Tenant, string Model, string Region, string Event, string Status, DateTimeOffset At, ulong Sequence);

/// <summary>
/// What the live stream reads off one message of the event log, from its stored subject and its
/// event-type header alone (the feed asks for headers only: a submission's inputs and a result's
/// outputs never cross to it). Pure: tested without a server.
/// </summary>
internal static class LiveFacts
{
    /// <summary>The wire name the live stream gives a submission (the log stores the job command, not an event).</summary>
    public const string Submitted = EventNames.JobSubmitted;

    /// <summary>What the message says: a job's change, a processor's capacity fact, or nothing of interest.</summary>
    public abstract record Fact;

    public sealed record Job(JobChange Change) : Fact;

    public sealed record Processor(string Type) : Fact;

    /// <summary>
    /// Reads a stored subject:
    /// <c>log.&lt;p&gt;.jobs|served.&lt;region&gt;.&lt;model&gt;.&lt;priority&gt;.&lt;tenant&gt;.&lt;job&gt;</c> (a submission: the one
    /// subject that names the tenant), <c>log.&lt;p&gt;.events.&lt;region&gt;.&lt;model&gt;.&lt;job&gt;</c> (a lifecycle
    /// event, named by <paramref name="type"/>), <c>log.&lt;p&gt;.events.processors.&lt;processor&gt;</c>.
    /// </summary>
    public static Fact? Read(string subject, string? type, DateTimeOffset at, ulong sequence)
    {
        var t = subject.Split('.');
        if (t.Length < 5 || t[0] != Messaging.LogSubjects.Root)
        {
            return null;
        }

        return (t[2], t.Length) switch
        {
            ("jobs" or "served", 8) when Guid.TryParseExact(t[7], "N", out var job) =>
                new Job(new JobChange(job, t[6], t[4], t[3], Submitted, JobStatuses.Queued, at, sequence)),
            ("events", 5) when t[3] == "processors" && type is not null => new Processor(type),
            ("events", 6) when Guid.TryParseExact(t[5], "N", out var job) && JobLifecycle.StatusAfter(type) is { } status =>
                new Job(new JobChange(job, null, t[4], t[3], type!, status, at, sequence)),
            _ => null,
        };
    }

    /// <summary>
    /// The change to keep of two for the same job, the earlier first: the later one, unless the job
    /// had ended and the later is not a retry (the terminal rule, <see cref="JobLifecycle"/>: a
    /// late redelivery, or a served submission stored after its ending, does not reopen a job).
    /// The dashboard's script applies the same rule to the rows it shows.
    /// </summary>
    public static JobChange Merge(JobChange? earlier, JobChange later) =>
        earlier is not null && JobLifecycle.IsTerminal(earlier.Status) && later.Event != EventNames.JobRetried
            ? earlier with { Tenant = earlier.Tenant ?? later.Tenant }
            : later with { Tenant = later.Tenant ?? earlier?.Tenant };
}
