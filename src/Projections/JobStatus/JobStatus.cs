using CqrsInference.Commands.Jobs;
using Marten.Events.Aggregation;

namespace CqrsInference.Projections.JobStatus;

/// <summary>
/// The job as applications see it: the read model behind <c>GET /v1/jobs/{id}</c>. A retried job is
/// in its latest attempt series: <see cref="Retries"/> counts the retries, and the timings, outputs
/// and error are the series'; the earlier series' outcomes stay in the job's events.
/// <see cref="Runs"/> is the exception: every model run of every attempt of every series, kept
/// across retries, for the job's cost (null until the first run ends).
/// </summary>
public sealed record JobStatus(
    Guid Id,
    string Tenant,
    string Status,
    string Model,
    string ModelVersion,
    string Region,
    string Priority,
    DateTimeOffset SubmittedAt,
    string RequestDigest,
    IReadOnlyDictionary<string, string>? Metadata,
    DateTimeOffset? StartedAt = null,
    DateTimeOffset? CompletedAt = null,
    int Attempts = 0,
    double? QueueWaitMs = null,
    double? RunMs = null,
    string? Worker = null,
    string? Device = null,
    int? BatchSize = null,
    IReadOnlyList<Tensor>? Outputs = null,
    JobError? Error = null,
    BlobRef? OutputsRef = null,
    string? Webhook = null,
    string? RanInRegion = null,
    bool Overflowed = false,
    DateTimeOffset? ArchivedAt = null,
    IReadOnlyList<string>? WebhookEvents = null,
    BatchLine? Batch = null,
    int Retries = 0,
    DateTimeOffset? RetriedAt = null,
    string? RetryKey = null,
    IReadOnlyList<JobRun>? Runs = null)
{
    /// <summary>The attempt series the job is in: 1, then one more for each retry (<see cref="Retries"/>).</summary>
    public int CurrentSeries() => Retries + 1;
}

public sealed record JobError(string Code, string Message, int Attempt, bool DeadLettered);

/// <summary>
/// One model run of the job: the attempt, when it ended and how (<see cref="Outcome"/>: the ending
/// event's wire name), the processor and its device class (what prices are set for), and the
/// batch's run time and size, of which the job's share is <see cref="DeviceSeconds"/>.
/// </summary>
public sealed record JobRun(int Series, int Attempt, DateTimeOffset EndedAt, string Outcome, string Worker, string DeviceClass, double RunMs, int BatchSize)
{
    /// <summary>Unknown device class (an event without its context): priced as no class is.</summary>
    public const string UnknownDevice = "?";

    /// <summary>Whether the run failed (the attempt was retried, or the job failed): listed and summed apart from the runs that succeeded.</summary>
    public bool Failed() => Outcome != EventNames.JobSucceeded;

    public double DeviceSeconds() => DeviceTime.Seconds(RunMs, BatchSize);
}

/// <summary>
/// Keeps <see cref="JobStatus"/> in the same transaction as the events (inline). The status each
/// event leads to and the terminal rule are <see cref="JobLifecycle"/>'s: once a job is terminal it
/// stays so, and a late or repeated event cannot move it to a second terminal state.
/// </summary>
public sealed class JobStatusProjection : SingleStreamProjection<JobStatus, Guid>
{
    /// <summary>The projection as one function over any event, for replays outside the daemon.</summary>
    public static JobStatus? Evolve(JobStatus? current, object @event) => (current, @event) switch
    {
        (null, V1.JobSubmitted e) => Create(e),
        (null, _) => null,
        (_, V1.JobStarted e) => Apply(e, current),
        (_, V1.JobAttemptFailed e) => Apply(e, current),
        (_, V1.JobSucceeded e) => Apply(e, current),
        (_, V1.JobFailed e) => Apply(e, current),
        (_, V1.JobCancelled e) => Apply(e, current),
        (_, V1.JobExpired e) => Apply(e, current),
        (_, V1.JobRetried e) => Apply(e, current),
        _ => current,
    };

    /// <summary><see cref="JobLifecycle.Changes"/> for the job as it stands: its status and its attempt series.</summary>
    public static bool Changes(JobStatus current, object @event) => JobLifecycle.Changes(current.Status, current.CurrentSeries(), @event);

    /// <summary>A retry starts the job's next attempt series afresh: queued, with nothing of the last series' run.</summary>
    public static JobStatus Apply(V1.JobRetried e, JobStatus current) =>
        !Changes(current, e)
            ? current
            : current with
            {
                Status = JobLifecycle.StatusAfter(e),
                Retries = e.Series - 1,
                RetriedAt = e.RetriedAt,
                RetryKey = e.RetryKey,
                StartedAt = null,
                CompletedAt = null,
                Attempts = 0,
                QueueWaitMs = null,
                RunMs = null,
                Worker = null,
                Device = null,
                BatchSize = null,
                Outputs = null,
                OutputsRef = null,
                Error = null,
                RanInRegion = null,
                Overflowed = false,
            };

    public static JobStatus Create(V1.JobSubmitted e) =>
        new(e.JobId, e.Tenant, JobLifecycle.StatusAfter(e), e.Model, e.ModelVersion, e.Region, e.Priority, e.SubmittedAt,
            e.RequestDigest, e.Metadata, Webhook: e.Webhook, WebhookEvents: e.WebhookEvents, Batch: e.Batch);

    public static JobStatus Apply(V1.JobStarted e, JobStatus current) =>
        !Changes(current, e)
            ? current
            : current with
            {
                Status = JobLifecycle.StatusAfter(e),
                StartedAt = e.StartedAt,
                Attempts = Math.Max(current.Attempts, e.Attempt),
                QueueWaitMs = e.QueueWaitMs,
                Worker = e.Worker,
                Device = e.Device,
                RanInRegion = e.RanInRegion ?? current.Region,
                Overflowed = e.Overflowed,
            };

    public static JobStatus Apply(V1.JobAttemptFailed e, JobStatus current) =>
        !Changes(current, e)
            ? current
            : Started(current, e.Start) with
            {
                Status = JobLifecycle.StatusAfter(e),
                Attempts = Math.Max(current.Attempts, e.Attempt),
                Error = new JobError(e.ErrorCode, e.Reason, e.Attempt, DeadLettered: false),
                Runs = Ran(current, e.Series, e.Attempt, e.FailedAt, EventNames.JobAttemptFailed, e.Worker, e.Context, e.RunMs, e.BatchSize),
            };

    public static JobStatus Apply(V1.JobSucceeded e, JobStatus current) =>
        !Changes(current, e)
            ? current
            : Started(current, e.Start) with
            {
                Status = JobLifecycle.StatusAfter(e),
                CompletedAt = e.CompletedAt,
                Attempts = Math.Max(current.Attempts, e.Attempt),
                RunMs = e.RunMs,
                Worker = e.Worker,
                Device = e.Device,
                BatchSize = e.BatchSize,
                Outputs = e.Outputs,
                OutputsRef = e.OutputsRef,
                Error = null,
                Runs = Ran(current, e.Series, e.Attempt, e.CompletedAt, EventNames.JobSucceeded, e.Worker, e.Context, e.RunMs, e.BatchSize),
            };

    public static JobStatus Apply(V1.JobFailed e, JobStatus current) =>
        !Changes(current, e)
            ? current
            : Started(current, e.Start) with
            {
                Status = JobLifecycle.StatusAfter(e),
                CompletedAt = e.FailedAt,
                Attempts = Math.Max(current.Attempts, e.Attempt),
                Worker = e.Worker,
                Device = e.Device,
                Error = new JobError(e.ErrorCode, e.Reason, e.Attempt, e.DeadLettered),
                Runs = Ran(current, e.Series, e.Attempt, e.FailedAt, EventNames.JobFailed, e.Worker, e.Context, e.RunMs, e.BatchSize),
            };

    /// <summary>The job's runs with this ending's run added, when the ending came out of a model run (it carries the run time).</summary>
    private static IReadOnlyList<JobRun>? Ran(
        JobStatus current, int? series, int attempt, DateTimeOffset endedAt, string outcome, string worker, JobContext? context, double? runMs, int? batchSize) =>
        runMs is not { } ms
            ? current.Runs
            : [.. current.Runs ?? [], new JobRun(JobLifecycle.SeriesOf(series), attempt, endedAt, outcome, worker, context?.DeviceClass ?? JobRun.UnknownDevice, ms, batchSize ?? 1)];

    /// <summary>The start an ending carries (a short run publishes no separate <see cref="V1.JobStarted"/>).</summary>
    private static JobStatus Started(JobStatus current, JobStart? start) => start is null
        ? current
        : current with
        {
            StartedAt = start.StartedAt,
            QueueWaitMs = start.QueueWaitMs,
            RanInRegion = start.RanInRegion ?? current.Region,
            Overflowed = start.Overflowed,
        };

    public static JobStatus Apply(V1.JobExpired e, JobStatus current) =>
        !Changes(current, e)
            ? current
            : current with { Status = JobLifecycle.StatusAfter(e), CompletedAt = e.ExpiredAt, Worker = e.Worker };

    public static JobStatus Apply(V1.JobCancelled e, JobStatus current) =>
        !Changes(current, e)
            ? current
            : current with { Status = JobLifecycle.StatusAfter(e), CompletedAt = e.CancelledAt };
}
