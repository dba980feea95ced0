using CqrsInference.Commands.Jobs.Submitting;

using System.Diagnostics;

namespace CqrsInference.Commands.Jobs;

/// <summary>Puts jobs on the work queue (the NATS transport implements it).</summary>
public interface IJobQueue
{
    /// <summary>Publishes and waits for the queue's acknowledgement; returns whether it was a duplicate and the payload size.</summary>
    Task<(bool Duplicate, int Bytes)> PublishAsync(JobCommand job, CancellationToken ct);
}

/// <summary>The event log: where lifecycle events are published, each under its <see cref="JobLifecycle.MessageId"/>.</summary>
public interface IEventLog
{
    /// <summary>
    /// Publishes a job's lifecycle event and waits until the log stored it (a duplicate counts as
    /// stored), then announces it to anyone following the job.
    /// </summary>
    Task AppendAsync(JobRoute job, object @event, Activity? trace, CancellationToken ct);

    /// <summary>
    /// Records the submission of a job a processor serves on the interactive path (the queue message
    /// it was sent, <paramref name="message"/>), before any event of it: it never was in a work queue.
    /// </summary>
    Task AppendServedAsync(JobCommand job, byte[] message, Activity? trace, CancellationToken ct);
}

/// <summary>
/// The interactive path: a processor of the job's region (or, when none answers, of another region)
/// runs the job at once over request/reply, records its submission and ending on the event log, and
/// only then answers.
/// </summary>
public interface IInteractiveRuns
{
    /// <summary>
    /// What became of the job: served (its ending is on the log), taken already by another run of
    /// it, or null when no processor took it within <paramref name="within"/>: the caller queues it instead.
    /// </summary>
    Task<InteractiveOutcome?> RunAsync(JobCommand job, TimeSpan within, CancellationToken ct);
}

/// <summary>What a processor of the interactive path did with a job.</summary>
public abstract record InteractiveOutcome
{
    /// <summary>It ran the job in <paramref name="Region"/>; the job's ending is on the log.</summary>
    public sealed record Served(string Region) : InteractiveOutcome;

    /// <summary>
    /// It did not run the job: a run of the same job (a request retried with its Idempotency-Key
    /// while the first ran, or after) claimed it first. The caller follows the job; it does not run twice.
    /// </summary>
    public sealed record Taken : InteractiveOutcome;
}

/// <summary>
/// What the log needs to know of a job to route its events: its region and model, and the attempt
/// series its events belong to (<see cref="JobLifecycle.InSeries"/>; 1 until the job is retried).
/// </summary>
public sealed record JobRoute(string Region, string Model, int Series = 1)
{
    public static JobRoute Of(JobCommand job) => new(job.Region, job.Model, job.SeriesNumber);
}

/// <summary>Large tensors live in an object store; messages and events carry a <see cref="BlobRef"/>.</summary>
public interface IClaimCheck
{
    /// <summary>The tensors themselves, or a reference to them when they are over the size threshold.</summary>
    Task<(IReadOnlyList<Tensor> Inline, BlobRef? Ref)> OffloadAsync(IReadOnlyList<Tensor> tensors, CancellationToken ct);

    /// <summary>The tensors a reference names; <see cref="InvalidDataException"/> when the blob is missing or changed.</summary>
    Task<IReadOnlyList<Tensor>> LoadAsync(BlobRef blob, CancellationToken ct);
}

/// <summary>Who got a job first: a processor (to run it) or a cancel.</summary>
public enum ClaimOutcome
{
    /// <summary>The caller holds the job: a processor may run it, a cancel has cancelled it.</summary>
    Won,

    /// <summary>The job was cancelled before any processor claimed it.</summary>
    Cancelled,

    /// <summary>A processor claimed the job first (it is running or has run).</summary>
    Running,
}

/// <summary>
/// Decides once per job whether it runs or is cancelled: whoever claims it first wins, atomically
/// (the NATS transport uses a key-value create).
/// </summary>
public interface IJobClaims
{
    /// <summary>
    /// A processor's claim of attempt series <paramref name="series"/> (each series of a retried job is
    /// claimed on its own); a redelivered job finds its own 'running' claim and runs again.
    /// </summary>
    Task<ClaimOutcome> ClaimForRunAsync(Guid jobId, int series, CancellationToken ct);

    /// <summary>A cancel's claim of attempt series <paramref name="series"/>: <see cref="ClaimOutcome.Won"/> means it will never run.</summary>
    Task<ClaimOutcome> ClaimForCancelAsync(Guid jobId, int series, CancellationToken ct);
}

/// <summary>Where a submit looks up an Idempotency-Key used before (the read model).</summary>
/// <summary>Claims an idempotency key (by the job id it derives) for a request, atomically.</summary>
public interface IIdempotencyClaims
{
    /// <summary>The digest of the request that holds the key: this request's if it is the first, else the first one's.</summary>
    Task<string> ClaimAsync(Guid jobId, string digest, CancellationToken ct);

    /// <summary>The digest of the request that holds the key, or null while none does (nothing is claimed).</summary>
    Task<string?> FindAsync(Guid jobId, CancellationToken ct);
}

public interface IIdempotencyRecords
{
    /// <summary>The request digests of those of the jobs already recorded for the tenant, by job id.</summary>
    Task<IReadOnlyDictionary<Guid, string>> FindDigestsAsync(IReadOnlyList<Guid> jobIds, string tenant, CancellationToken ct);
}

/// <summary>
/// Makes an accepted job readable at once, before the recorder has recorded it (the API keeps it in
/// memory: no write on the submit path).
/// </summary>
public interface IAcceptedJobs
{
    void Accepted(V1.JobSubmitted submitted);
}

/// <summary>
/// Region failover (docs/ARCHITECTURE.md, "Jobs held while the home is lost"): while the region
/// that keeps the event log does not answer, an API holds the jobs it accepts in a queue on its
/// own region's servers and forwards them to the log once it answers again (the takeover, or the
/// home's return). Off (<see cref="Enabled"/> false) without <c>Failover:StandbyRegions</c>.
/// </summary>
public interface IJobHolding
{
    /// <summary>Whether jobs can be held: failover is configured and the region's hold is made.</summary>
    bool Enabled { get; }

    /// <summary>Whether the home's log was found not answering at the last look (submits are then held at once).</summary>
    bool HomeLost { get; }

    /// <summary>Cancelled when the home is found lost: a submit waiting on it is held instead.</summary>
    CancellationToken WhenHomeLost { get; }

    /// <summary>Whether <paramref name="exception"/> says a server did not answer (rather than that the request or the code was wrong).</summary>
    bool IsOutage(Exception exception);

    /// <summary>
    /// Holds <paramref name="job"/> durably in this region. <paramref name="digest"/> is the request
    /// digest of a submit with an <c>Idempotency-Key</c> (null without): a key already held or
    /// claimed with another body is a conflict.
    /// </summary>
    Task<HeldJob> HoldAsync(JobCommand job, string? digest, CancellationToken ct);
}

/// <summary>What holding a job did: <see cref="Duplicate"/> when it was held (or claimed) before with the same body; <see cref="Conflict"/> when with another.</summary>
public readonly record struct HeldJob(bool Duplicate, bool Conflict, int Bytes);

/// <summary>Whether the deployment takes more work now: the tenant's rate and daily quota, the queues' depth.</summary>
public interface ISubmitAdmission
{
    /// <summary>Null when <paramref name="jobs"/> jobs for <paramref name="models"/> may be queued (they are counted); else why not and when to try again.</summary>
    Task<SubmitOutcome?> RefuseAsync(string tenant, IReadOnlyCollection<string> models, int jobs, CancellationToken ct);

    /// <summary>The same for jobs held while the home is lost (<see cref="IJobHolding"/>): the tenant's burst and rate only (the queues and the quota live in the home).</summary>
    SubmitOutcome? RefuseHeld(string tenant, int jobs);
}
