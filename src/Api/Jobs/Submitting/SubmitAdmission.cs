using System.Collections.Concurrent;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Messaging;
using Marten;
using NATS.Client.JetStream;

namespace CqrsInference.Api.Jobs.Submitting;

/// <summary>
/// Admits valid jobs unless their tenant is over its rate (429), one of their models' queues is full
/// (503) or their tenant's daily quota would be passed (429). Checked in that order, so a refused
/// job uses up no quota.
/// </summary>
internal sealed class SubmitAdmission(Hosting.TenantRateLimiter rate, TenantQuota quota, QueueDepthGuard queues) : ISubmitAdmission
{
    public SubmitOutcome? RefuseHeld(string tenant, int jobs)
    {
        if (jobs > rate.BurstFor(tenant))
        {
            return new SubmitOutcome.Rejected(new Dictionary<string, string[]>
            {
                ["jobs"] = [$"This tenant may submit at most {rate.BurstFor(tenant)} jobs at once (its burst); split these {jobs} jobs into smaller requests."],
            });
        }

        return rate.TryTake(tenant, jobs) is { } retryAfter ? new SubmitOutcome.RateLimited(retryAfter) : null;
    }

    public async Task<SubmitOutcome?> RefuseAsync(string tenant, IReadOnlyCollection<string> models, int jobs, CancellationToken ct)
    {
        if (RefuseHeld(tenant, jobs) is { } refused)
        {
            return refused;
        }

        if (models.Count > 0 && await queues.WorkQueueFullAsync(ct) is { } full)
        {
            return new SubmitOutcome.QueueFull(models.First(), full.Stored, full.Limit, full.Setting);
        }

        foreach (var model in models)
        {
            if (await queues.OverLimitAsync(tenant, model, ct) is { } depth)
            {
                return new SubmitOutcome.QueueFull(model, depth, queues.MaxDepth);
            }
        }

        return await quota.ExhaustedAsync(tenant, jobs, ct) is { } exhausted ? new SubmitOutcome.QuotaExhausted(exhausted.Limit, exhausted.RetryAfter) : null;
    }
}

/// <summary>
/// Per-tenant daily quota of submitted jobs (<c>Api:Quota:JobsPerDay</c>, per-tenant overrides
/// under <c>Api:Quota:Tenants:&lt;tenant&gt;</c>; 0 = unlimited). Counted in a JetStream key-value
/// bucket (<see cref="QuotaCounters"/>), so it holds across API instances and while PostgreSQL is
/// away; refusals are 429 with Retry-After until the next UTC day.
/// </summary>
internal sealed class TenantQuota(QuotaOptions options, QuotaCounters counters, TimeProvider clock)
{
    public long LimitFor(string tenant) => options.Tenants.TryGetValue(tenant, out var limit) ? limit : options.JobsPerDay;

    /// <summary>Counts a job held while the home was lost, once forwarded (never refused: it was accepted).</summary>
    public async Task CountAsync(string tenant, DateTimeOffset submittedAt, CancellationToken ct)
    {
        if (LimitFor(tenant) > 0)
        {
            await counters.TryTakeAsync(tenant, DateOnly.FromDateTime(submittedAt.UtcDateTime), long.MaxValue, 1, ct);
        }
    }

    /// <summary>
    /// Null when the tenant may submit (and the job is counted); else the limit and the time until it
    /// resets. Counted when admitted: a job refused afterwards (its publish failed) still counts.
    /// </summary>
    public async Task<(long Limit, TimeSpan RetryAfter)?> ExhaustedAsync(string tenant, int jobs, CancellationToken ct)
    {
        var limit = LimitFor(tenant);
        if (limit <= 0)
        {
            return null;
        }

        var now = clock.GetUtcNow();
        var today = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
        return await counters.TryTakeAsync(tenant, DateOnly.FromDateTime(now.UtcDateTime), limit, jobs, ct) ? null : (limit, today.AddDays(1) - now);
    }
}

/// <summary>
/// Queue-depth backpressure: when a tenant has more than <c>Submit:MaxQueueDepth</c> jobs waiting
/// for a model, its new submits for it get 503 with Retry-After instead of growing the queue without
/// bound. The depth is the tenant's own, summed over the model's queues of every region and priority
/// and read at most every half second: one tenant's backlog neither refuses another tenant's jobs
/// nor shows in its refusals (a probe with two tenants found both). Beneath it, the work queue's own limit (<c>Topology:JobsMaxMsgs</c>,
/// <c>Topology:JobsMaxBytes</c>): while the stream is at it, every submit gets 503 too. A few jobs
/// accepted in the half second before it is seen are not lost: they wait in the event log until
/// the queue has room (JetStream's sourcing resumes where it stopped).
/// </summary>
internal sealed class QueueDepthGuard(JobQueues queues, SubmitOptions submit, TimeProvider clock)
{
    private static readonly TimeSpan FreshFor = TimeSpan.FromMilliseconds(500);
    private readonly long _maxDepth = submit.MaxQueueDepth;
    private readonly ConcurrentDictionary<string, (Dictionary<string, long> WaitingPerTenant, DateTimeOffset ReadAt)> _depths = new();
    private volatile StoredFill? _stored;

    /// <summary>The work queue at its own limit (as the stream has it): what it holds, the limit and its setting; null while it has room or NATS cannot say.</summary>
    public async ValueTask<(long Stored, long Limit, string Setting)?> WorkQueueFullAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var known = _stored;
        if (known is null || now - known.ReadAt > FreshFor)
        {
            try
            {
                known = new StoredFill(await queues.StoredAsync(ct), now);
                _stored = known;
            }
            catch (Exception e) when (e is NatsJSException or NATS.Client.Core.NatsException or TimeoutException)
            {
                return null;
            }
        }

        var fill = known.Fill;
        return fill.MaxJobs > 0 && fill.Jobs >= fill.MaxJobs ? (fill.Jobs, fill.MaxJobs, "Topology:JobsMaxMsgs")
            : fill.MaxBytes > 0 && fill.Bytes >= fill.MaxBytes ? (fill.Bytes, fill.MaxBytes, "Topology:JobsMaxBytes (bytes)")
            : null;
    }

    public long MaxDepth => _maxDepth;

    /// <summary>The tenant's waiting jobs for the model, when they are over the limit; null while under it or NATS cannot say.</summary>
    public async ValueTask<long?> OverLimitAsync(string tenant, string model, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        if (!_depths.TryGetValue(model, out var known) || now - known.ReadAt > FreshFor)
        {
            try
            {
                known = ((await queues.ListAsync(model, ct))
                    .GroupBy(q => q.Queue.Tenant, StringComparer.Ordinal)
                    .ToDictionary(g => g.Key, g => g.Sum(q => q.Waiting), StringComparer.Ordinal), now);
                _depths[model] = known;
            }
            catch (Exception e) when (e is NatsJSException or NATS.Client.Core.NatsException or TimeoutException)
            {
                // NATS is slow or unreachable: no depth to judge by.
                return null;
            }
        }

        return known.WaitingPerTenant.GetValueOrDefault(tenant) is var depth && depth > _maxDepth ? depth : null;
    }

    /// <summary>The work queue's fill as last read (one reference, swapped whole).</summary>
    private sealed record StoredFill((long Jobs, long Bytes, long MaxJobs, long MaxBytes) Fill, DateTimeOffset ReadAt);
}

/// <summary><c>Api:Quota</c>: jobs a tenant may submit per UTC day (<see cref="TenantQuota"/>; 0 = unlimited).</summary>
internal sealed class QuotaOptions
{
    [System.ComponentModel.DataAnnotations.Range(0, long.MaxValue)]
    public long JobsPerDay { get; set; }

    /// <summary>Per-tenant limits in place of <see cref="JobsPerDay"/> (0 = unlimited).</summary>
    public Dictionary<string, long> Tenants { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    public static string? Problem(QuotaOptions options) =>
        options.Tenants.FirstOrDefault(t => t.Value < 0) is { Key: { } tenant } negative
            ? $"Api:Quota:Tenants:{tenant} is {negative.Value}: a tenant's quota is 0 (unlimited) or more jobs per day."
            : null;
}
