namespace CqrsInference.Projections.Webhooks;

/// <summary>
/// How many webhook calls run at once: at most <c>perTenant</c> for one tenant and <c>overall</c>
/// for all. A delivery waits for its tenant's turn before it waits for an overall one, so a tenant
/// whose endpoints hang holds at most <c>perTenant</c> of the overall turns and other tenants' calls
/// go ahead. While it waits, <c>waiting</c> is called every <c>heartbeat</c> (to tell NATS the
/// message is still being worked on). A tenant's lane exists while someone is in it or waits for it.
/// </summary>
internal sealed class TenantLanes(int perTenant, int overall)
{
    private readonly SemaphoreSlim _overall = new(overall);
    private readonly Dictionary<string, Lane> _lanes = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Tenants with a lane now (in it or waiting for it).</summary>
    public int Tenants
    {
        get
        {
            lock (_lock)
            {
                return _lanes.Count;
            }
        }
    }

    /// <summary>Waits for a turn of the tenant's; dispose the turn to hand it back.</summary>
    public async Task<IDisposable> EnterAsync(string tenant, TimeSpan heartbeat, Func<Task> waiting, CancellationToken ct)
    {
        var lane = Join(tenant);
        try
        {
            await WaitAsync(lane.Turns, heartbeat, waiting, ct);
        }
        catch
        {
            Leave(tenant, lane);
            throw;
        }

        try
        {
            await WaitAsync(_overall, heartbeat, waiting, ct);
        }
        catch
        {
            lane.Turns.Release();
            Leave(tenant, lane);
            throw;
        }

        return new Turn(this, tenant, lane);
    }

    private static async Task WaitAsync(SemaphoreSlim turns, TimeSpan heartbeat, Func<Task> waiting, CancellationToken ct)
    {
        while (!await turns.WaitAsync(heartbeat, ct))
        {
            await waiting();
        }
    }

    private Lane Join(string tenant)
    {
        lock (_lock)
        {
            if (!_lanes.TryGetValue(tenant, out var lane))
            {
                _lanes[tenant] = lane = new Lane(new SemaphoreSlim(perTenant));
            }

            lane.Users++;
            return lane;
        }
    }

    private void Leave(string tenant, Lane lane)
    {
        lock (_lock)
        {
            if (--lane.Users == 0)
            {
                _lanes.Remove(tenant);
                lane.Turns.Dispose();
            }
        }
    }

    private sealed class Lane(SemaphoreSlim turns)
    {
        public SemaphoreSlim Turns { get; } = turns;

        /// <summary>In the lane or waiting for it (under the lock).</summary>
        public int Users { get; set; }
    }

    private sealed class Turn(TenantLanes lanes, string tenant, Lane lane) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                lanes._overall.Release();
                lane.Turns.Release();
                lanes.Leave(tenant, lane);
            }
        }
    }
}
