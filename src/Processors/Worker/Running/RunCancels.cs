using System.Collections.Concurrent;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>
/// The cancels this processor heard (<see cref="RunAbortListener"/>) and the runs they abort. Each
/// run of a batch is watched (<see cref="Watch"/>); a cancel of one of its jobs fires the run's
/// token, which aborts it as its execution timeout would (<see cref="TimedRunner"/>). A cancel is
/// remembered for <see cref="Remember"/>, so that a job claimed just before its cancel was heard,
/// whose run had not begun yet, is aborted as soon as it begins.
/// </summary>
internal sealed class RunCancels(TimeProvider clock)
{
    /// <summary>How long a cancel heard is kept for runs not begun yet.</summary>
    public static readonly TimeSpan Remember = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<Guid, RunWatch> _running = new();
    private readonly ConcurrentDictionary<Guid, long> _heard = new();

    /// <summary>A cancel of the job was heard: abort its run here, if any, now or when it begins.</summary>
    public void Cancel(Guid jobId)
    {
        var now = clock.GetTimestamp();
        _heard[jobId] = now;
        foreach (var (job, at) in _heard)
        {
            if (clock.GetElapsedTime(at, now) > Remember)
            {
                _heard.TryRemove(new KeyValuePair<Guid, long>(job, at));
            }
        }

        if (_running.TryGetValue(jobId, out var watch))
        {
            watch.Cancel(jobId);
        }
    }

    /// <summary>Watches a batch's jobs for cancels until disposed (a cancel heard before counts).</summary>
    public RunWatch Watch(IEnumerable<Guid> jobs)
    {
        var watched = jobs.ToHashSet();
        var watch = new RunWatch(this, watched);
        foreach (var job in watched)
        {
            _running[job] = watch;
            if (_heard.ContainsKey(job))
            {
                watch.Cancel(job);
            }
        }

        return watch;
    }

    internal void Forget(RunWatch watch, IEnumerable<Guid> jobs)
    {
        foreach (var job in jobs)
        {
            _running.TryRemove(new KeyValuePair<Guid, RunWatch>(job, watch));
        }
    }
}

/// <summary>
/// One batch's jobs under watch for cancels. The batch runs as one or more runs in turn (the batch,
/// then each job alone after an abort); <see cref="Begin"/> gives each run its token, fired by a
/// cancel of one of that run's jobs.
/// </summary>
internal sealed class RunWatch(RunCancels cancels, IReadOnlySet<Guid> jobs) : IDisposable
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
