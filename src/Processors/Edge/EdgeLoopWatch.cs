using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CqrsInference.Processors.Edge;

/// <summary>
/// The edge site's loop, seen from outside: when it last moved (took up an item, finished one,
/// looked for new ones) and what it is on. A loop that does not move for
/// <see cref="EdgeSiteOptions.StallAfter"/> makes <c>/health</c> unhealthy (<see cref="EdgeLoopHealthCheck"/>):
/// a site that hangs on a file, a model run or its own server read healthy before.
/// </summary>
internal sealed class EdgeLoopWatch(TimeProvider clock)
{
    private long _moved = clock.GetTimestamp();
    private string? _item;

    /// <summary>The loop moved; <paramref name="item"/> is what it is on now (null: between items).</summary>
    public void Moved(string? item = null)
    {
        _item = item;
        Volatile.Write(ref _moved, clock.GetTimestamp());
    }

    public (TimeSpan Still, string? Item) Now => (clock.GetElapsedTime(Volatile.Read(ref _moved)), _item);
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
