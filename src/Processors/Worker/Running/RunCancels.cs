using System.Collections.Concurrent;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>
/// The cancels this processor heard (<see cref="RunAbortListener"/>) and the runs they abort. Each
/// run of a batch is watched (<see cref="Watch"/>); a cancel of one of its jobs fires the run's
/// token, which aborts it as its execution timeout would (<see cref="TimedRunner"/>). A cancel
/// names the job's attempt series: a retry of a cancelled job is a run of the next series, which
/// the cancel does not touch. A cancel is remembered for <see cref="Remember"/>, so that a job
/// claimed just before its cancel was heard, whose run had not begun yet, is aborted as soon as it
/// begins.
/// </summary>
internal sealed class RunCancels(TimeProvider clock)
{
    /// <summary>How long a cancel heard is kept for runs not begun yet.</summary>
    public static readonly TimeSpan Remember = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<RunKey, RunWatch> _running = new();
    private readonly ConcurrentDictionary<RunKey, long> _heard = new();

    /// <summary>A cancel of the job's attempt <paramref name="series"/> was heard: abort its run here, if any, now or when it begins.</summary>
    public void Cancel(Guid jobId, int series)
    {
        var key = new RunKey(jobId, series);
        var now = clock.GetTimestamp();
        _heard[key] = now;
        foreach (var (heard, at) in _heard)
        {
            if (clock.GetElapsedTime(at, now) > Remember)
            {
                _heard.TryRemove(new KeyValuePair<RunKey, long>(heard, at));
            }
        }

        if (_running.TryGetValue(key, out var watch))
        {
            watch.Cancel(jobId);
        }
    }

    /// <summary>
    /// A cancel that names no attempt series (from an API of an earlier version, during a rolling
    /// upgrade): aborts the job's run here if one is running, whatever its series, and is not
    /// remembered, since it could be the cancel of an earlier series than the next run's.
    /// </summary>
    public void CancelRunning(Guid jobId)
    {
        foreach (var (key, watch) in _running)
        {
            if (key.JobId == jobId)
            {
                watch.Cancel(jobId);
            }
        }
    }

    /// <summary>Watches a batch's jobs (each in its attempt series) for cancels until disposed (a cancel heard within <see cref="Remember"/> before counts).</summary>
    public RunWatch Watch(IEnumerable<(Guid JobId, int Series)> jobs)
    {
        var watched = jobs.Select(j => new RunKey(j.JobId, j.Series)).ToHashSet();
        var watch = new RunWatch(this, watched);
        foreach (var key in watched)
        {
            _running[key] = watch;
            if (_heard.TryGetValue(key, out var at) && clock.GetElapsedTime(at) <= Remember)
            {
                watch.Cancel(key.JobId);
            }
        }

        return watch;
    }

    internal void Forget(RunWatch watch, IEnumerable<RunKey> jobs)
    {
        foreach (var key in jobs)
        {
            _running.TryRemove(new KeyValuePair<RunKey, RunWatch>(key, watch));
        }
    }
}

/// <summary>A job's run in one attempt series: what a cancel names.</summary>
internal readonly record struct RunKey(Guid JobId, int Series);

/// <summary>
/// One batch's jobs under watch for cancels. The batch runs as one or more runs in turn (the batch,
/// then each job alone after an abort); <see cref="Begin"/> gives each run its token, fired by a
/// cancel of one of that run's jobs.
/// </summary>
internal sealed class RunWatch(RunCancels cancels, IReadOnlySet<RunKey> jobs) : IDisposable
{
    private readonly Lock _gate = new();
    private readonly HashSet<Guid> _cancelled = [];
    private HashSet<Guid> _current = [];
    private CancellationTokenSource? _run;

    public bool IsCancelled(Guid jobId)
    {
        lock (_gate)
        {
            return _cancelled.Contains(jobId);
        }
    }

    /// <summary>The token of the next run, of <paramref name="run"/>: already fired if one of them was cancelled.</summary>
    public CancellationToken Begin(IEnumerable<Guid> run)
    {
        lock (_gate)
        {
            _run?.Dispose();
            _run = new CancellationTokenSource();
            _current = [.. run];
            if (_current.Overlaps(_cancelled))
            {
                _run.Cancel();
            }

            return _run.Token;
        }
    }

    internal void Cancel(Guid jobId)
    {
        lock (_gate)
        {
            if (_cancelled.Add(jobId) && _current.Contains(jobId))
            {
                _run?.Cancel();
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            cancels.Forget(this, jobs);
            _run?.Dispose();
            _run = null;
        }
    }
}
