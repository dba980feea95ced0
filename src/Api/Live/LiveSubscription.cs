using CqrsInference.Api.Security;
using CqrsInference.Messaging;
using CqrsInference.Projections.Analytics;

namespace CqrsInference.Api.Live;

/// <summary>
/// What one caller's stream may carry: the jobs of the tenants it sees (<see cref="ApiCaller.Sees"/>:
/// its own; every tenant's for the operator), queue depths with the analyst role (its own tenant's
/// queues, as <c>GET /v1/analytics/queues</c>), the processors for the operator only (as
/// <c>GET /v1/analytics/processors</c>). A job whose tenant is not known reaches the operator only.
/// </summary>
internal sealed record LiveView(ApiCaller Caller)
{
    public bool Queues => Caller.IsOperator || Caller.Has(ApiRoles.Analyst);

    public bool Processors => Caller.IsOperator;

    public bool Sees(JobChange change) => change.Tenant is { } tenant ? Caller.Sees(tenant) : Caller.IsOperator;

    public bool Sees(QueueState queue) => Caller.Sees(queue.Queue.Tenant);
}

/// <summary>
/// One stream's buffer between the feed and the connection: the latest change of each job not sent
/// yet (coalesced with <see cref="LiveFacts.Merge"/>), and the latest queue and processor snapshots.
/// Bounded by <see cref="Capacity"/> jobs: a client that reads slower than jobs change overflows it,
/// the buffer is dropped and the stream says <c>resync</c> (the page reads everything again), so a
/// slow client never makes the API hold more than this.
/// </summary>
internal sealed class LiveSubscription(LiveFeed feed, LiveView view) : IDisposable
{
    public const int Capacity = 2000;

    private readonly object _gate = new();
    private Dictionary<Guid, JobChange> _changes = [];
    private IReadOnlyList<QueueState>? _queues;
    private IReadOnlyList<ProcessorStatus>? _processors;
    private bool _overflowed;

    public LiveView View => view;

    /// <summary>What the stream takes at each of its ticks; empty when nothing happened.</summary>
    public sealed record Batch(bool Overflowed, IReadOnlyList<JobChange> Changes, IReadOnlyList<QueueState>? Queues, IReadOnlyList<ProcessorStatus>? Processors);

    /// <summary>Takes a change for the stream, if its caller sees the job's tenant: the only way a change gets in.</summary>
    internal void Add(JobChange change)
    {
        if (!view.Sees(change))
        {
            return;
        }

        lock (_gate)
        {
            if (_overflowed)
            {
                return;
            }

            _changes[change.Job] = LiveFacts.Merge(_changes.GetValueOrDefault(change.Job), change);
            if (_changes.Count > Capacity)
            {
                Overflow();
            }
        }
    }

    internal void Overflow()
    {
        lock (_gate)
        {
            _overflowed = true;
            _changes = [];
        }
    }

    internal void Snapshot(IReadOnlyList<QueueState>? queues, IReadOnlyList<ProcessorStatus>? processors)
    {
        lock (_gate)
        {
            _queues = view.Queues ? queues ?? _queues : null;
            _processors = view.Processors ? processors ?? _processors : null;
        }
    }

    /// <summary>Takes what is waiting, and empties the buffer.</summary>
    public Batch Take()
    {
        lock (_gate)
        {
            var batch = new Batch(_overflowed, [.. _changes.Values.OrderBy(c => c.Sequence)], _queues, _processors);
            (_changes, _queues, _processors, _overflowed) = ([], null, null, false);
            return batch;
        }
    }

    public void Dispose() => feed.Unsubscribe(this);
}
