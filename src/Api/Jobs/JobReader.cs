using System.Collections.Concurrent;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;
using Marten;

namespace CqrsInference.Api.Jobs;

/// <summary>
/// Finds a job as its tenant reads it. The recorder makes a job readable a few milliseconds after
/// it is accepted; in between, this API instance answers from what it accepted (kept
/// <see cref="HeldFor"/>), and a job accepted moments ago by another instance (a time-ordered id
/// from the last seconds) is waited for, briefly, instead of answered 404.
/// </summary>
internal sealed class JobReader(IDocumentStore store, TimeProvider clock, Failover.JobHolding? holding = null) : IAcceptedJobs
{
    public static readonly TimeSpan HeldFor = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan WaitForRecent = TimeSpan.FromSeconds(1);
    private readonly ConcurrentDictionary<Guid, (JobStatus Status, long At)> _accepted = new();
    private long _lastSweep;

    public void Accepted(V1.JobSubmitted submitted)
    {
        _accepted[submitted.JobId] = (JobStatusProjection.Create(submitted), clock.GetTimestamp());
        Sweep();
    }

    /// <summary>
    /// A job this API saw end (a caller waited for it): read as ended, not as queued, until the
    /// recorder has recorded it.
    /// </summary>
    public void Ended(JobStatus status) => _accepted[status.Id] = (status, clock.GetTimestamp());

    /// <summary>
    /// A job this API queued again (a retry): read as queued in its new attempt series, not as it
    /// ended before, until the recorder has recorded the retry. Returns the job as it now reads.
    /// </summary>
    public JobStatus Retried(JobStatus ended, V1.JobRetried retried)
    {
        var queued = JobStatusProjection.Apply(retried, ended);
        _accepted[ended.Id] = (queued, clock.GetTimestamp());
        return queued;
    }

    /// <summary>The job if it exists and is the tenant's; null otherwise (another tenant's job is not disclosed).</summary>
    public Task<JobStatus?> FindAsync(IQuerySession session, Guid id, string tenant, CancellationToken ct) =>
        FindAsync(session, id, owner => owner == tenant, ct);

    /// <summary>The job if it exists and the caller sees its tenant (<see cref="ApiCaller.Sees"/>); null otherwise.</summary>
    public Task<JobStatus?> FindAsync(IQuerySession session, Guid id, ApiCaller caller, CancellationToken ct) =>
        FindAsync(session, id, caller.Sees, ct);

    /// <summary>
    /// Another tenant's job is treated as absent at every step, not only in the answer: a recent id
    /// of another tenant's job waits as long as a recent id of no job does, so the time of a 404
    /// does not tell whether an id exists.
    /// </summary>
    private async Task<JobStatus?> FindAsync(IQuerySession session, Guid id, Func<string, bool> sees, CancellationToken ct)
    {
        JobStatus? Seen(JobStatus? status) => status is not null && sees(status.Tenant) ? status : null;
        return Seen(Latest(await RecordedAsync(session, id, ct), Accepted(id))) ?? await WaitIfRecentAsync(id, Seen, ct) ?? Seen(await HeldAsync(id, ct));
    }

    /// <summary>
    /// The recorded status, unless this API saw the job end and the recorder has recorded only its
    /// start so far (an interactive job's submission and ending can be recorded in separate runs):
    /// a caller that got the job's answer never reads it as queued or running afterwards; nor does a
    /// caller that retried the job read it as it ended before the retry.
    /// </summary>
    private static JobStatus? Latest(JobStatus? recorded, JobStatus? held) =>
        recorded is not null && held is not null
            && ((!JobLifecycle.IsTerminal(recorded.Status) && JobLifecycle.IsTerminal(held.Status) && held.Retries == recorded.Retries) || held.Retries > recorded.Retries)
            ? held
            : recorded ?? held;

    /// <summary>
    /// The recorded status; while PostgreSQL is out of reach, or does not answer within
    /// <see cref="MemoryAnswersAfter"/>, a job this API just accepted reads as it was accepted (a
    /// PostgreSQL that hung held that answer for the driver's 30 s command timeout).
    /// </summary>
    private async Task<JobStatus?> RecordedAsync(IQuerySession session, Guid id, CancellationToken ct)
    {
        if (Accepted(id) is not { } held)
        {
            // Nothing else to answer with: a PostgreSQL that hangs is a 503 after ReadWithin, not
            // after the driver's command timeout (30 s by default) with the request held meanwhile.
            var read = await Projections.Outages.AskWithinAsync(t => session.LoadAsync<JobStatus>(id, t), ReadWithin, ct);
            return read.Answered ? read.Value : throw new TimeoutException($"PostgreSQL: {read.Unanswered}");
        }

        var recorded = await Projections.Outages.AskWithinAsync(t => session.LoadAsync<JobStatus>(id, t), MemoryAnswersAfter, ct);
        return recorded.Answered ? recorded.Value : Accepted(id) ?? held;
    }

    /// <summary>How long a read of a job this API does not hold waits for PostgreSQL before it is a 503.</summary>
    public static readonly TimeSpan ReadWithin = TimeSpan.FromSeconds(5);

    /// <summary>How long a read of a job this API holds waits for PostgreSQL before it answers from memory.</summary>
    public static readonly TimeSpan MemoryAnswersAfter = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The job as <see cref="FindAsync(IQuerySession, Guid, string, CancellationToken)"/> has it, or null
    /// when PostgreSQL is out of reach or does not answer within <paramref name="within"/>: for a caller
    /// that has another answer (a retried submit answers with the job as it was accepted).
    /// </summary>
    public async Task<JobStatus?> FindOrNothingWithinAsync(IQuerySession session, Guid id, string tenant, TimeSpan within, CancellationToken ct)
    {
        var found = await Projections.Outages.AskWithinAsync(t => FindAsync(session, id, tenant, t), within, ct);
        return found.Value;
    }

    /// <summary>
    /// The tenant's jobs among <paramref name="ids"/> as they stand (recorded, or newer in this API's
    /// memory), by id; those PostgreSQL does not have, or all when it does not answer within
    /// <paramref name="within"/>, are missing: for a caller that has another answer (a retried bulk submit).
    /// </summary>
    public async Task<IReadOnlyDictionary<Guid, JobStatus>> FindManyOrNothingWithinAsync(
        IQuerySession session, IReadOnlyList<Guid> ids, string tenant, TimeSpan within, CancellationToken ct)
    {
        var read = await Projections.Outages.AskWithinAsync(t => session.LoadManyAsync<JobStatus>(t, ids), within, ct);
        var recorded = (read.Value ?? []).ToDictionary(s => s.Id);
        var found = new Dictionary<Guid, JobStatus>(ids.Count);
        foreach (var id in ids)
        {
            if (Latest(recorded.GetValueOrDefault(id), Accepted(id)) is { } status && status.Tenant == tenant)
            {
                found[id] = status;
            }
        }

        return found;
    }

    private JobStatus? Accepted(Guid id) =>
        _accepted.TryGetValue(id, out var accepted) && clock.GetElapsedTime(accepted.At) < HeldFor ? accepted.Status : null;

    /// <summary>A job this region holds while the log's region is lost (docs/ARCHITECTURE.md): queued, from the hold, until it is forwarded and recorded.</summary>
    private async Task<JobStatus?> HeldAsync(Guid id, CancellationToken ct)
    {
        if (holding is not { Enabled: true, Ready: true })
        {
            return null;
        }

        try
        {
            return await holding.Outbox.FindAsync(id, ct) is { } held ? JobStatusProjection.Create(held.Job.ToSubmitted(held.Bytes)) : null;
        }
        catch (Exception e) when (Projections.Outages.IsOutage(e))
        {
            return null;
        }
    }

    /// <summary>A time-ordered id (UUIDv7) issued within the last seconds may belong to a job not yet recorded.</summary>
    private async Task<JobStatus?> WaitIfRecentAsync(Guid id, Func<JobStatus?, JobStatus?> seen, CancellationToken ct)
    {
        if (id.Version != 7 || clock.GetUtcNow() - IssuedAt(id) is var age && (age < -TimeSpan.FromSeconds(1) || age > TimeSpan.FromSeconds(10)))
        {
            return null;
        }

        var until = clock.GetTimestamp() + (long)(WaitForRecent.TotalSeconds * clock.TimestampFrequency);
        while (clock.GetTimestamp() < until)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(25), clock, ct);
            await using var session = store.QuerySession();
            var found = seen(await session.LoadAsync<JobStatus>(id, ct) ?? Accepted(id));
            if (found is not null)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>The millisecond timestamp in the first 48 bits of a UUIDv7.</summary>
    private static DateTimeOffset IssuedAt(Guid id)
    {
        Span<byte> bytes = stackalloc byte[16];
        id.TryWriteBytes(bytes, bigEndian: true, out _);
        var ms = ((long)bytes[0] << 40) | ((long)bytes[1] << 32) | ((long)bytes[2] << 24) | ((long)bytes[3] << 16) | ((long)bytes[4] << 8) | bytes[5];
        return DateTimeOffset.FromUnixTimeMilliseconds(ms);
    }

    private void Sweep()
    {
        var now = clock.GetTimestamp();
        if (clock.GetElapsedTime(Interlocked.Read(ref _lastSweep), now) < TimeSpan.FromSeconds(5))
        {
            return;
        }

        Interlocked.Exchange(ref _lastSweep, now);
        foreach (var (id, accepted) in _accepted)
        {
            if (clock.GetElapsedTime(accepted.At, now) >= HeldFor)
            {
                _accepted.TryRemove(id, out _);
            }
        }
    }
}
