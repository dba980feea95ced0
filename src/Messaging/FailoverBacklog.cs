using CqrsInference.Commands.Jobs;

namespace CqrsInference.Messaging;

/// <summary>
/// The backlog rule of a takeover (<see cref="RegionFailover"/>), pure: which of the copied log's
/// queue messages the survivor's work queue keeps. Read the copied log in order
/// (<see cref="Saw"/>); then a job is in the backlog when the latest attempt series it was queued
/// for (its submission is series 1, a retry <c>&lt;job&gt;:retried:&lt;n&gt;</c> series n) has no
/// terminal event in the copy (<see cref="JobLifecycle.EndingOf"/>).
/// Every series of a job is queued on the job's one subject, so the queue is purged by subject:
/// whole when the latest series ended, all but its last message (the latest series) when an earlier
/// series was queued too.
/// </summary>
public sealed class FailoverBacklog
{
    private readonly Dictionary<Guid, (string Subject, int Latest, int Messages)> _queued = [];
    private readonly HashSet<(Guid Job, int Series)> _ended = [];

    /// <summary>Queue messages seen (what the work queue sources from the copy).</summary>
    public int QueueMessages { get; private set; }

    /// <summary>Jobs queued in the copy.</summary>
    public int Jobs => _queued.Count;

    /// <summary>One message of the copied log, in log order.</summary>
    public void Saw(string subject, string? messageId)
    {
        if (messageId is null)
        {
            return;
        }

        if (subject.Split('.') is [_, _, "jobs", ..] && JobLifecycle.QueuedBy(messageId) is { } queued)
        {
            var known = _queued.GetValueOrDefault(queued.Job, (Subject: subject, Latest: 0, Messages: 0));
            _queued[queued.Job] = (subject, Math.Max(known.Latest, queued.Series), known.Messages + 1);
            QueueMessages++;
        }
        else if (JobLifecycle.EndingOf(messageId) is { } ending)
        {
            _ended.Add(ending);
        }
    }

    /// <summary>Whether the job's latest queued series has ended.</summary>
    public bool Ended(Guid job) => _queued.TryGetValue(job, out var q) && _ended.Contains((job, q.Latest));

    /// <summary>
    /// The purges that leave exactly the backlog: per subject, <c>Keep</c> 0 (everything: the job
    /// ended) or 1 (the latest series' message: an earlier series ended before it was retried).
    /// </summary>
    public IEnumerable<(string Subject, ulong Keep, bool JobEnded)> Purges()
    {
        foreach (var (job, (subject, _, messages)) in _queued)
        {
            if (Ended(job))
            {
                yield return (subject, 0, true);
            }
            else if (messages > 1)
            {
                yield return (subject, 1, false);
            }
        }
    }
}

/// <summary>
/// Where each recorder checkpoint lands in the copied log. A checkpoint names a sequence of the
/// lost log; the copy renumbers (it starts at 1, and skips what the mirror lacks), and the
/// survivor's clients publish into the new log while it is copied. A checkpoint moves to the
/// copy's sequence of the last copied message at or below it, as long as the copy so far is
/// contiguous from sequence 1 (no message of anyone else in between): everything at or below that
/// was recorded, and what follows is recorded (again, where the lost log had it already: the
/// recorder's dedupe absorbs that). Fed in log order.
/// </summary>
public sealed class CheckpointMap(IEnumerable<ulong> checkpoints)
{
    private readonly ulong[] _checkpoints = [.. checkpoints.Distinct().Order()];
    private readonly Dictionary<ulong, ulong> _moved = [];
    private ulong _next = 1;

    /// <summary>The message at <paramref name="lost"/> in the lost log is at <paramref name="copy"/> in the copy.</summary>
    public void Copied(ulong lost, ulong copy)
    {
        if (copy != _next)
        {
            // Another publisher's message (or a duplicate) came in between: nothing later is sure to be recorded.
            _next = 0;
            return;
        }

        _next++;
        foreach (var checkpoint in _checkpoints.Where(c => lost <= c))
        {
            _moved[checkpoint] = copy;
        }
    }

    /// <summary>Where <paramref name="checkpoint"/> of the lost log lands in the copy (0: before all of it).</summary>
    public ulong this[ulong checkpoint] => _moved.GetValueOrDefault(checkpoint);
}

/// <summary>
/// The recorders' checkpoints, as a takeover moves them (Projections' RecorderCheckpointMove, in
/// PostgreSQL): fenced first, so that what they say is final, and moved into the copy's numbering
/// once it is made, fencing again, so every recorder leads anew from the moved checkpoint.
/// </summary>
public interface IRecorderCheckpoints
{
    /// <summary>Stops every recorder of the log from committing under its current lease and reads each checkpoint (id → lost log's sequence).</summary>
    Task<IReadOnlyDictionary<string, ulong>> FenceAsync(CancellationToken ct);

    /// <summary>Sets each checkpoint (id → copy's sequence) and stops every recorder again, in one transaction.</summary>
    Task MoveAsync(IReadOnlyDictionary<string, ulong> checkpoints, CancellationToken ct);
}
