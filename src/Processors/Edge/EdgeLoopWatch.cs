using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CqrsInference.Processors.Edge;

/// <summary>
/// The edge site's loop, seen from outside: when it last moved (took up an item, finished one,
/// looked for new ones between items) and what it is on; trying the same item again and again
/// (its events cannot be stored) is not moving. A loop that does not move for
/// <see cref="EdgeSiteOptions.StallAfter"/> makes <c>/health</c> unhealthy (<see cref="EdgeLoopHealthCheck"/>):
/// a site that hangs on a file, a model run or its own server read healthy before.
/// </summary>
internal sealed class EdgeLoopWatch(TimeProvider clock)
{
    private long _moved = clock.GetTimestamp();
    private string? _item;

    /// <summary>The loop took up <paramref name="item"/>; the same item again (a retry after a failure) is not a move.</summary>
    public void Took(string item)
    {
        if (item != _item)
        {
            _item = item;
            Move();
        }
    }

    /// <summary>The item taken up is done.</summary>
    public void Finished()
    {
        _item = null;
        Move();
    }

    /// <summary>The loop looked for new items; while an item it took up is not done (its last try failed), that is not a move.</summary>
    public void Looked()
    {
        if (_item is null)
        {
            Move();
        }
    }

    public (TimeSpan Still, string? Item) Now => (clock.GetElapsedTime(Volatile.Read(ref _moved)), _item);

    private void Move() => Volatile.Write(ref _moved, clock.GetTimestamp());
}

/// <summary>Unhealthy while the site's loop has not moved for <see cref="EdgeSiteOptions.StallAfter"/>.</summary>
internal sealed class EdgeLoopHealthCheck(EdgeLoopWatch watch, EdgeSiteOptions options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var (still, item) = watch.Now;
        return Task.FromResult(still <= options.StallAfter
            ? HealthCheckResult.Healthy($"The site's loop moved {still.TotalSeconds:0.0} s ago")
            : HealthCheckResult.Unhealthy(
                $"The site's loop has not moved for {still.TotalSeconds:0} s (EdgeSite:StallAfter is {options.StallAfter.TotalSeconds:0} s), "
                + (item is null ? "between items" : $"on item {item}") + ": is the site's nats-server, the input folder or a model run hanging?"));
    }
}
