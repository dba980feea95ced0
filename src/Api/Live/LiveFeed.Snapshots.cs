using CqrsInference.Messaging;
using CqrsInference.Projections.Analytics;
using Marten;
using NATS.Client.JetStream;

namespace CqrsInference.Api.Live;

/// <summary>The feed's snapshots: queue depths and processors, read once for every open stream.</summary>
internal sealed partial class LiveFeed
{
    /// <summary>Once a second while the log moved in the last few seconds (or a stream opened): queue depths and processors, for every stream.</summary>
    private async Task SnapshotsAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(SnapshotInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var now = Environment.TickCount64;
                var queuesWanted = now <= Interlocked.Read(ref _queuesUntil) && Wanted(v => v.Queues);
                var processorsWanted = now <= Interlocked.Read(ref _processorsUntil) && Wanted(v => v.Processors);
                var queueStates = queuesWanted ? await QueuesAsync(stoppingToken) : null;
                var processors = processorsWanted ? await ProcessorsAsync(stoppingToken) : null;
                if (queueStates is not null || processors is not null)
                {
                    lock (_gate)
                    {
                        _subscriptions.ForEach(s => s.Snapshot(queueStates, processors));
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private bool Wanted(Func<LiveView, bool> wants)
    {
        lock (_gate)
        {
            return _subscriptions.Any(s => wants(s.View));
        }
    }

    private async Task<IReadOnlyList<QueueState>?> QueuesAsync(CancellationToken ct)
    {
        try
        {
            return await queues.ListAsync(model: null, ct);
        }
        catch (Exception e) when (!ct.IsCancellationRequested && (Projections.Outages.IsOutage(e) || e is NatsJSException))
        {
            return null;
        }
    }

    private async Task<IReadOnlyList<ProcessorStatus>?> ProcessorsAsync(CancellationToken ct)
    {
        try
        {
            await using var session = store.QuerySession();
            return await session.Query<ProcessorStatus>().OrderBy(p => p.Worker).ToListAsync(ct);
        }
        catch (Exception e) when (!ct.IsCancellationRequested && Projections.Outages.IsOutage(e))
        {
            return null;
        }
    }
}
