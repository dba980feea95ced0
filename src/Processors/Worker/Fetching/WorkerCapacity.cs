namespace CqrsInference.Processors.Worker.Fetching;

/// <summary>
/// What a worker holds and may still take: jobs reserved by pulls still under way, jobs delivered
/// and not yet settled, and of both how many are other regions'. A worker pulls only for free
/// capacity (slots × max batch), so JetStream keeps every job it cannot run now for another
/// processor. Every change signals the fetch loop, which wakes to look again.
/// </summary>
internal sealed class WorkerCapacity(int capacity, int remoteSlots)
{
    private readonly SemaphoreSlim _changed = new(0);
    private int _reserved;
    private int _inFlight;
    private int _remoteReserved;
    private int _remoteInFlight;
    private int _coming;

    /// <summary>Jobs this worker may hold at once.</summary>
    public int Capacity => capacity;

    /// <summary>Jobs it may still pull.</summary>
    public int Free => capacity - Volatile.Read(ref _reserved) - Volatile.Read(ref _inFlight);

    /// <summary>Other regions' jobs it may still take (<see cref="SchedulingOptions.RemoteSlots"/>, pulls under way included).</summary>
    public int RemoteAllowance => remoteSlots - Volatile.Read(ref _remoteReserved) - Volatile.Read(ref _remoteInFlight);

    /// <summary>
    /// Whether jobs the queues' counts showed are still on their way: pulls planned from those counts
    /// have not delivered them all and have not ended. A pull that waits at the server for a job not
    /// counted yet (a wake-up's) is not counted: it may deliver nothing.
    /// </summary>
    public bool JobsComing => Volatile.Read(ref _coming) > 0;

    /// <summary>Jobs delivered and not yet settled.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>
    /// A pull is planned. A remote pull counts against the remote allowance from now, not only once
    /// delivered: otherwise the next plan, made before this pull returns, would take another.
    /// </summary>
    public void Reserve(PullPlan pull)
    {
        Interlocked.Add(ref _reserved, pull.Count);
        if (pull.Remote)
        {
            Interlocked.Add(ref _remoteReserved, pull.Count);
        }

        if (pull.OfCountedJobs)
        {
            Interlocked.Add(ref _coming, pull.Count);
        }
    }

    /// <summary>
    /// An interactive job asks for a place: taken (in flight) if one is free now and, for another
    /// region's job, the remote allowance has room; else refused, and the caller tries elsewhere.
    /// </summary>
    public bool TryTake(bool remote)
    {
        if (remote && RemoteAllowance <= 0)
        {
            return false;
        }

        if (Interlocked.Increment(ref _inFlight) + Volatile.Read(ref _reserved) > capacity)
        {
            Interlocked.Decrement(ref _inFlight);
            return false;
        }

        if (remote)
        {
            Interlocked.Increment(ref _remoteInFlight);
        }

        return true;
    }

    /// <summary>One job of <paramref name="pull"/> arrived: reserved becomes in flight (before it is handed on).</summary>
    public void Delivered(PullPlan pull, bool remote)
    {
        Interlocked.Decrement(ref _reserved);
        if (pull.OfCountedJobs)
        {
            Interlocked.Decrement(ref _coming);
        }

        Interlocked.Increment(ref _inFlight);
        if (remote)
        {
            Interlocked.Increment(ref _remoteInFlight);
        }
    }

    /// <summary>A pull ended with <paramref name="delivered"/> of its jobs: the rest of its reservation is free again.</summary>
    public void PullEnded(PullPlan pull, int delivered)
    {
        Interlocked.Add(ref _reserved, -(pull.Count - delivered));
        if (pull.OfCountedJobs)
        {
            Interlocked.Add(ref _coming, -(pull.Count - delivered));
        }

        if (pull.Remote)
        {
            Interlocked.Add(ref _remoteReserved, -pull.Count);
        }

        Signal();
    }

    /// <summary>Jobs were settled (run, ended, or handed back).</summary>
    public void Settled(int count, int remote)
    {
        Interlocked.Add(ref _inFlight, -count);
        Interlocked.Add(ref _remoteInFlight, -remote);
        Signal();
    }

    /// <summary>Something changed: the fetch loop looks again.</summary>
    public void Signal() => _changed.Release();

    /// <summary>
    /// Waits for a change or the timeout. Signals that piled up meanwhile (every finished pull and
    /// batch, every wake-up) say one thing, look again: taken together they cost one look.
    /// </summary>
    public async Task WaitForChangeAsync(TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            await _changed.WaitAsync(timeout, ct);
        }
        catch (OperationCanceledException)
        {
        }

        while (_changed.CurrentCount > 0 && await _changed.WaitAsync(0, CancellationToken.None))
        {
        }
    }
}
