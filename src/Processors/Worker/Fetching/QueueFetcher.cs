using System.Collections.Concurrent;
using System.Threading.Channels;
using CqrsInference.Messaging;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Processors.Worker.Fetching;

/// <summary>
/// The first stage of a worker: pulls jobs of one model only for free capacity, choosing among the
/// model's queues with a <see cref="QueuePlanner"/> (home region, priority, tenant, overflow), and
/// hands them to the executors through a channel. It lists the queues' counts when what it read is
/// older than 100 ms, and when woken (the API announces each queued job) reads the woken queue's
/// counts alone in between; an
/// idle worker looks every <see cref="SchedulingOptions.IdleScan"/> for other regions' backlogs
/// and for retries that came due.
/// </summary>
internal sealed partial class QueueFetcher(
    string model, IJobSource source, WorkerCapacity capacity, ProcessorOptions options, TimeProvider clock, ILogger logger, OutageWatch? watch = null)
{
    private readonly OutageWatch _watch = watch ?? OutageWatches.Detached().For($"processor {model}");
    /// <summary>Pulls under way at once, at most.</summary>
    private const int MaxPulls = 8;

    private static readonly TimeSpan FreshFor = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// A listing stays fresh for this many times as long as it took, if that is longer than
    /// <see cref="FreshFor"/>: listing every queue is one request per 256 consumers and grows with
    /// the tenants (500 queues: 435 ms on nats-server 2.9.10, against 0.8 ms for one queue's info),
    /// and woken queues are read on their own in between.
    /// </summary>
    private const int FreshForListings = 4;

    /// <summary>How old a reading must be before a wake-up reads the queues again.</summary>
    private static readonly TimeSpan WokenAfter = TimeSpan.FromMilliseconds(2);

    /// <summary>Woken for more queues than this at once, the look lists every queue instead of reading each.</summary>
    private const int ReadWokenAtMost = 8;

    /// <summary>How long a pull for a woken queue waits at the server: the shortest NATS.Net accepts.</summary>
    internal static readonly TimeSpan WokenPullWait = TimeSpan.FromSeconds(1);
    private readonly QueuePlanner _planner = new(options.Region, options.Scheduling);
    private readonly ConcurrentDictionary<JobQueue, byte> _wokenQueues = new();
    private readonly ConcurrentDictionary<JobQueue, byte> _waitingOn = new();
    private IReadOnlyList<QueueState> _known = [];
    private long _knownAt = long.MinValue;
    private long _listedAt = long.MinValue;
    private TimeSpan _listedFreshFor = FreshFor;
    private long _lastLook;
    private int _woken;

    /// <summary>Pulls until <paramref name="ct"/> is cancelled, then waits for the pulls under way.</summary>
    public async Task RunAsync(ChannelWriter<JobDelivery> deliveries, CancellationToken ct)
    {
        using var wakeStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var waking = ListenForWakeUpsAsync(wakeStop.Token);
        var pulls = new List<Task>();
        while (!ct.IsCancellationRequested)
        {
            pulls.RemoveAll(p => p.IsCompleted);
            var free = capacity.Free;
            if (free <= 0 || pulls.Count >= MaxPulls)
            {
                await capacity.WaitForChangeAsync(TimeSpan.FromSeconds(1), ct);
                continue;
            }

            var look = await LookAsync(ct);
            if (look == Look.Stopping)
            {
                break;
            }

            if (look == Look.Failed)
            {
                await capacity.WaitForChangeAsync(TimeSpan.FromSeconds(1), ct);
                continue;
            }

            var plan = _planner.Plan(_known, free, capacity.RemoteAllowance, clock.GetUtcNow());
            if (plan.Count == 0)
            {
                await NothingPlannedAsync(look, pulls, deliveries, ct);
                continue;
            }

            Take(plan);
            pulls.AddRange(plan.Select(pull => PullAsync(pull, deliveries)));
        }

        await Task.WhenAll(pulls);
        await wakeStop.CancelAsync();
        await waking;
    }

    /// <summary>
    /// Nothing to take. Woken for a job the counts do not show yet (it is stored in the event log
    /// and reaches the work queue a moment later), a pull that waits at the server for it takes it
    /// the moment it arrives; otherwise idle until a job is queued at home, capacity frees up, or
    /// the next look at the queues.
    /// </summary>
    private async Task NothingPlannedAsync(Look look, List<Task> pulls, ChannelWriter<JobDelivery> deliveries, CancellationToken ct)
    {
        if (look == Look.Refreshed && TakeWokenQueue() is { } queue)
        {
            var pull = new PullPlan(queue, 1, Remote: false, WaitAtServer: WokenPullWait);
            capacity.Reserve(pull);
            pulls.Add(PullAsync(pull, deliveries));
            _knownAt = long.MinValue;
            return;
        }

        if (Volatile.Read(ref _woken) == 1)
        {
            // Woken just after the last reading: read again once that is WokenAfter old.
            await Task.Delay(WokenAfter, clock, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            return;
        }

        // The queues are read again after a wake-up, or once what was read is older than FreshFor;
        // not at every change of capacity, which alone puts no job in a queue: interactive jobs
        // change it at their own rate, and a listing each was 400 CONSUMER.LIST requests a second
        // at 200 jobs/s. A change is still worth a new plan from what was read (remote allowance).
        await capacity.WaitForChangeAsync(options.Scheduling.IdleScan, ct);
    }

    /// <summary>Counts the planned pulls against capacity and against what was read of the queues.</summary>
    private void Take(IReadOnlyList<PullPlan> plan)
    {
        _known = _known.Select(q => plan.FirstOrDefault(p => p.Queue == q.Queue) is { } taken
            ? q with { Waiting = Math.Max(0, q.Waiting - taken.Count), InFlight = q.InFlight + taken.Count }
            : q).ToList();
        foreach (var pull in plan)
        {
            _wokenQueues.TryRemove(pull.Queue, out _);
            capacity.Reserve(pull);
        }
    }

    /// <summary>A queue a wake-up named that no waiting pull covers yet, or null.</summary>
    private JobQueue? TakeWokenQueue()
    {
        foreach (var queue in _wokenQueues.Keys)
        {
            _wokenQueues.TryRemove(queue, out _);
            if (_waitingOn.TryAdd(queue, 0))
            {
                return queue;
            }
        }

        return null;
    }

    /// <summary>The API announces each job it queued; one at home wakes the loop.</summary>
    private async Task ListenForWakeUpsAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var queue in source.WakeUpsAsync(options.Region, model, ct))
            {
                _wokenQueues.TryAdd(queue, 0);
                if (Interlocked.Exchange(ref _woken, 1) == 0)
                {
                    capacity.Signal();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            // Without wake-ups the loop still looks every IdleScan.
            Failed(e, $"wake-ups stopped: {e.Message}");
        }
    }

    private async Task PullAsync(PullPlan pull, ChannelWriter<JobDelivery> deliveries)
    {
        var delivered = 0;
        try
        {
            await foreach (var delivery in source.PullAsync(pull.Queue, pull.Count, pull.WaitAtServer, CancellationToken.None))
            {
                delivered++;
                var remote = delivery.IsRemote(options.Region);
                capacity.Delivered(pull, remote);
                if (!deliveries.TryWrite(delivery))
                {
                    // Stopping: the executors take no more; hand it back at once.
                    capacity.Settled(1, remote ? 1 : 0);
                    await delivery.Ack.RetryAsync(TimeSpan.Zero);
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A pause before this queue is planned again (not a retry: the next plan decides what to pull).
            Failed(e, e.Message);
            await Task.Delay(TimeSpan.FromSeconds(1), clock);
        }
        finally
        {
            capacity.PullEnded(pull, delivered);
            if (pull.WaitAtServer is not null)
            {
                _waitingOn.TryRemove(pull.Queue, out _);
            }
        }
    }

    /// <summary>NATS away: logged once per outage by the model's watch; any other failure each time.</summary>
    private void Failed(Exception e, string reason)
    {
        if (e is NATS.Client.Core.NatsException or TimeoutException)
        {
            _watch.Failed(e);
        }
        else
        {
            LogPullError(logger, model, reason);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Pulling jobs for {Model} failed: {Reason}")]
    private static partial void LogPullError(ILogger logger, string model, string reason);
}
