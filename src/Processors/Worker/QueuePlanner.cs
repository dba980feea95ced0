using System.ComponentModel.DataAnnotations;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Messaging;

namespace CqrsInference.Processors.Worker;

/// <summary>How a processor chooses among its model's queues (bound from <c>Processor:Scheduling</c>).</summary>
internal sealed class SchedulingOptions
{
    /// <summary>
    /// Of every <c>InteractiveWeight + 1</c> jobs taken while both classes wait, one is batch: interactive
    /// work goes first and batch work is never starved.
    /// </summary>
    [Range(1, 1000)]
    public int InteractiveWeight { get; set; } = 4;

    /// <summary>Whether idle capacity takes work from other regions' backlogs.</summary>
    public bool Overflow { get; set; } = true;

    /// <summary>
    /// A region overflows while at least this many jobs of the model wait there (not counting the
    /// jobs already running); below it the region is keeping up and its jobs stay home.
    /// </summary>
    [Range(0, int.MaxValue)]
    public int OverflowThreshold { get; set; } = 20;

    /// <summary>
    /// A region also overflows once its oldest job has waited this long, however short its queue: a
    /// region with no processor of the model at all is served this way.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan OverflowAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The most jobs of other regions one processor runs at once (per model): one remote job per idle
    /// worker. With more slots than this, the processor's own region always finds a slot free.
    /// </summary>
    [Range(0, 1024)]
    public int RemoteSlots { get; set; } = 1;

    /// <summary>How often an idle processor looks at the queues without being woken (other regions' backlogs, retries).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan IdleScan { get; set; } = TimeSpan.FromMilliseconds(250);
}

/// <summary>
/// A pull the processor should make: how many jobs from which queue, whether they are another
/// region's, and how long the pull may wait at the server for them (null: not at all).
/// </summary>
internal sealed record PullPlan(JobQueue Queue, int Count, bool Remote, TimeSpan? WaitAtServer = null)
{
    /// <summary>
    /// Planned from the queues' counts: its jobs are there to take. A pull that waits at the server
    /// (for a job a wake-up announced, not counted yet) may bring nothing.
    /// </summary>
    public bool OfCountedJobs => WaitAtServer is null;
}

/// <summary>
/// Decides what a processor with free capacity takes next (pure: the queues' states in, pulls out).
/// Home region first; within it interactive before batch by weight; within a class the tenants in
/// turn, one job each, so that one tenant's burst cannot starve the others. Capacity the home region
/// cannot use takes other regions' work only where their backlog is at or above the overflow
/// threshold (and only the excess) or their oldest job older than
/// <see cref="SchedulingOptions.OverflowAfter"/>, at most one remote job per idle slot (<paramref name="remoteAllowance"/>), from the
/// largest backlog first.
/// </summary>
internal sealed class QueuePlanner(string homeRegion, SchedulingOptions options)
{
    private long _taken;
    private readonly Dictionary<string, string> _lastTenant = [];

    public IReadOnlyList<PullPlan> Plan(IReadOnlyList<QueueState> queues, int free, int remoteAllowance, DateTimeOffset now = default)
    {
        // A queue listed twice (a list that paged while consumers changed) counts once.
        var waiting = queues.Where(q => q.Waiting > 0).GroupBy(q => q.Queue).ToDictionary(g => g.Key, g => g.Max(q => q.Waiting));
        var picks = new Dictionary<JobQueue, int>();
        var left = Take(waiting.Keys.Where(q => q.Region == homeRegion).ToList(), waiting, picks, free);
        var plans = picks.Select(p => new PullPlan(p.Key, p.Value, Remote: false)).ToList();
        if (left <= 0 || !options.Overflow || remoteAllowance <= 0)
        {
            return plans;
        }

        var backlogs = queues
            .Where(q => q.Queue.Region != homeRegion)
            .GroupBy(q => q.Queue.Region)
            .Select(g => (Region: g.Key, Waiting: g.Sum(q => q.Waiting), Oldest: g.Min(q => q.OldestAt)))
            .Select(r => (r.Region, r.Waiting, Excess: Excess(r.Waiting, r.Oldest, now)))
            .Where(r => r.Excess > 0)
            .OrderByDescending(r => r.Waiting).ThenBy(r => r.Region, StringComparer.Ordinal);
        var remote = Math.Min(left, remoteAllowance);
        foreach (var (region, _, excess) in backlogs)
        {
            var remotePicks = new Dictionary<JobQueue, int>();
            var budget = Math.Min(remote, excess);
            var unused = Take(waiting.Keys.Where(q => q.Region == region).ToList(), waiting, remotePicks, budget);
            remote -= budget - unused;
            plans.AddRange(remotePicks.Select(p => new PullPlan(p.Key, p.Value, Remote: true)));
            if (remote == 0)
            {
                break;
            }
        }

        return plans;
    }

    /// <summary>
    /// How many of a region's waiting jobs other regions may take: the part of the backlog at and above
    /// the threshold (so the region is left with one job less than the threshold: recovered), or
    /// every waiting job once the oldest has waited <see cref="SchedulingOptions.OverflowAfter"/>.
    /// </summary>
    private int Excess(long waiting, DateTimeOffset? oldest, DateTimeOffset now)
    {
        if (waiting <= 0)
        {
            return 0;
        }

        if (oldest is { } at && now - at >= options.OverflowAfter)
        {
            return (int)Math.Min(int.MaxValue, waiting);
        }

        var threshold = Math.Max(1, options.OverflowThreshold);
        return (int)Math.Clamp(waiting - threshold + 1, 0, int.MaxValue);
    }

    /// <summary>Takes up to <paramref name="free"/> jobs from the candidates one at a time; returns what is left.</summary>
    private int Take(List<JobQueue> candidates, Dictionary<JobQueue, long> waiting, Dictionary<JobQueue, int> picks, int free)
    {
        while (free > 0)
        {
            var interactive = candidates.Where(q => q.Priority == Priorities.Interactive && waiting[q] > 0).ToList();
            var batch = candidates.Where(q => q.Priority == Priorities.Batch && waiting[q] > 0).ToList();
            if (interactive.Count == 0 && batch.Count == 0)
            {
                return free;
            }

            var batchTurn = _taken % (Math.Max(0, options.InteractiveWeight) + 1) == Math.Max(0, options.InteractiveWeight);
            var queue = NextTenant(interactive.Count == 0 || (batchTurn && batch.Count > 0) ? batch : interactive);
            _taken++;
            waiting[queue]--;
            picks[queue] = picks.GetValueOrDefault(queue) + 1;
            free--;
        }

        return 0;
    }

    /// <summary>The queue of the tenant after the one served last in this class (and region), round robin.</summary>
    private JobQueue NextTenant(List<JobQueue> queues)
    {
        var key = $"{queues[0].Region}.{queues[0].Priority}";
        var ordered = queues.OrderBy(q => q.Tenant, StringComparer.Ordinal).ToList();
        var last = _lastTenant.GetValueOrDefault(key);
        var next = ordered.FirstOrDefault(q => last is null || string.CompareOrdinal(q.Tenant, last) > 0) ?? ordered[0];
        _lastTenant[key] = next.Tenant;
        return next;
    }
}
