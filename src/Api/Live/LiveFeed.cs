using CqrsInference.Messaging;
using CqrsInference.Projections.Analytics;
using Marten;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Api.Live;

/// <summary>
/// What the dashboard's live streams (<see cref="LiveStreamEndpoint"/>) follow: one ordered push
/// consumer per API process over the whole event log (<c>log.&gt;</c>), <b>headers only</b> (the
/// subject, the event type and the stored time are all it needs; inputs and outputs never cross),
/// turned into job changes (<see cref="LiveFacts"/>) and handed to every open stream that may see
/// them. Queue depths and the processor list are read once a second while the log moves (shared
/// by every stream), not once per stream. Each stream's buffer is bounded (<see cref="LiveSubscription"/>).
/// The consumer exists only while a stream is open and for <see cref="IdleStop"/> after the last
/// one closed: an API that no dashboard watches pays nothing per event (the write path's cost per
/// job, issue 14). It starts from a little before the first stream opened, so a job submitted
/// right after a stream's <c>hello</c> is not missed; after an idle stop, a stream resumed with
/// <c>Last-Event-ID</c> gets <c>resync</c>.
/// </summary>
internal sealed partial class LiveFeed(INatsJSContext js, JobQueues queues, IDocumentStore store, ILogger<LiveFeed> logger, OutageWatches? watches = null) : BackgroundService
{
    /// <summary>How many recent job changes are kept for streams that resume with <c>Last-Event-ID</c>.</summary>
    public const int ResumeCapacity = 4096;

    /// <summary>How often queue depths and processors are read while the log moves, and for how long after.</summary>
    public static readonly TimeSpan SnapshotInterval = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan SnapshotLinger = TimeSpan.FromSeconds(3);

    /// <summary>How long the feed keeps following the log after the last stream closed.</summary>
    public static readonly TimeSpan IdleStop = TimeSpan.FromSeconds(30);

    /// <summary>How far before the first stream opened the feed starts reading (clocks of API and server may differ a little).</summary>
    private static readonly TimeSpan StartMargin = TimeSpan.FromSeconds(2);

    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For("live feed");
    private readonly JobTenants _tenants = new();
    private readonly Queue<JobChange> _recent = new();
    private readonly List<LiveSubscription> _subscriptions = [];
    private readonly object _gate = new();
    private ulong _lastSequence;
    private ulong _horizon; // every job change after this sequence is still in _recent
    private long _queuesUntil;
    private long _processorsUntil;
    private TaskCompletionSource<DateTimeOffset> _watched = new(TaskCreationOptions.RunContinuationsAsynchronously); // when the first stream opened
    private long _unwatchedSince;

    /// <summary>
    /// Opens a stream's subscription. With <paramref name="after"/> (a <c>Last-Event-ID</c>), the changes
    /// it missed come first, if this feed still holds them all; otherwise the subscription starts
    /// overflowed, and the stream's first word is <c>resync</c>.
    /// </summary>
    public LiveSubscription Subscribe(LiveView view, ulong? after)
    {
        var subscription = new LiveSubscription(this, view);
        lock (_gate)
        {
            if (after is { } last)
            {
                // Before what is kept, or past what this feed has read (from the future, or from an
                // instance that had read further): not a resume this feed can vouch for.
                if (last < _horizon || _lastSequence == 0 || last > _lastSequence)
                {
                    subscription.Overflow();
                }
                else
                {
                    // The changes it missed, of the tenants it sees (Add filters, as for live changes).
                    foreach (var change in _recent.Where(c => c.Sequence > last))
                    {
                        subscription.Add(change);
                    }
                }
            }

            _subscriptions.Add(subscription);
            // The feed is woken with the time, not left to read a field set after the wake-up: it read the
            // time an earlier stream opened (and replayed minutes of changes to this one), or before any, none.
            _watched.TrySetResult(DateTimeOffset.UtcNow);
        }

        // A new stream gets the queues and processors as they are now, at the next snapshot.
        var soon = Environment.TickCount64 + 1;
        Interlocked.Exchange(ref _queuesUntil, Math.Max(Interlocked.Read(ref _queuesUntil), soon));
        Interlocked.Exchange(ref _processorsUntil, Math.Max(Interlocked.Read(ref _processorsUntil), soon));
        return subscription;
    }

    internal void Unsubscribe(LiveSubscription subscription)
    {
        lock (_gate)
        {
            _subscriptions.Remove(subscription);
            if (_subscriptions.Count == 0)
            {
                _unwatchedSince = Environment.TickCount64;
                _watched = new TaskCompletionSource<DateTimeOffset>(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(FollowAsync(stoppingToken), SnapshotsAsync(stoppingToken));

    private async Task FollowAsync(CancellationToken stoppingToken)
    {
        var again = Retries.Restart(TimeSpan.FromSeconds(1), _ => true, f =>
        {
            if (Projections.Outages.IsOutage(f.Exception))
            {
                _watch.Failed(f.Exception);
            }
            else
            {
                LogRestart(logger, f.Exception.Message);
            }
        });
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                Task<DateTimeOffset> watched;
                lock (_gate)
                {
                    watched = _watched.Task;
                }

                var since = await watched.WaitAsync(stoppingToken);
                using var following = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                var idle = StopWhenIdleAsync(following);
                try
                {
                    while (!following.IsCancellationRequested)
                    {
                        await again.ExecuteAsync(ct => ConsumeAsync(since, ct), following.Token);
                    }
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                }

                await idle;
                Forget();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async ValueTask ConsumeAsync(DateTimeOffset since, CancellationToken ct)
    {
        // A restarted server has lost the consumer: read on from a new one at once (Reconnects).
        using var connection = Reconnects.Follow(js.Connection, ct, lost => _watch.Failed(lost));
        try
        {
            var consumer = await js.CreateOrderedPushConsumerAsync(NatsTopology.EventsStream, Options(since), connection.Token);
            await NatsTopology.ConfirmedAsync(js, connection.Token);
            _watch.Worked();
            await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: connection.Token))
            {
                await TakeAsync(msg, connection.Token);
            }
        }
        catch (OperationCanceledException) when (connection.Reconnected)
        {
        }
    }

    /// <summary>Cancels <paramref name="following"/> once no stream has been open for <see cref="IdleStop"/>.</summary>
    private async Task StopWhenIdleAsync(CancellationTokenSource following)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(following.Token))
            {
                bool unwatched;
                lock (_gate)
                {
                    unwatched = _subscriptions.Count == 0 && Environment.TickCount64 - _unwatchedSince >= (long)IdleStop.TotalMilliseconds;
                }

                if (unwatched)
                {
                    await following.CancelAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>After an idle stop: nothing kept to resume from; the next start reads from its first stream on.</summary>
    private void Forget()
    {
        lock (_gate)
        {
            _recent.Clear();
            _lastSequence = 0;
            _horizon = 0;
        }
    }

    /// <summary>From a little before the first stream opened; after a failure, from the message after the last one read.</summary>
    private NatsJSOrderedConsumerOpts Options(DateTimeOffset since) => _lastSequence == 0
        ? new NatsJSOrderedConsumerOpts { FilterSubjects = [LogSubjects.All], DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartTime, OptStartTime = since - StartMargin, HeadersOnly = true }
        : new NatsJSOrderedConsumerOpts { FilterSubjects = [LogSubjects.All], DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartSequence, OptStartSeq = _lastSequence + 1, HeadersOnly = true };

    private async Task TakeAsync(INatsJSMsg<byte[]> msg, CancellationToken ct)
    {
        var sequence = msg.Metadata?.Sequence.Stream ?? 0;
        var fact = LiveFacts.Read(msg.Subject, EventWire.TypeOf(msg.Headers), msg.Metadata?.Timestamp ?? DateTimeOffset.UtcNow, sequence);
        switch (fact)
        {
            case LiveFacts.Job { Change: var change }:
                if (change.Tenant is { } tenant)
                {
                    _tenants.Remember(change.Job, tenant);
                }
                else
                {
                    change = change with { Tenant = _tenants.Of(change.Job) ?? await LookUpAsync(change.Job, ct) };
                }

                Publish(change);
                Interlocked.Exchange(ref _queuesUntil, Environment.TickCount64 + (long)SnapshotLinger.TotalMilliseconds);
                break;
            case LiveFacts.Processor:
                Interlocked.Exchange(ref _processorsUntil, Environment.TickCount64 + (long)SnapshotLinger.TotalMilliseconds);
                break;
        }

        lock (_gate)
        {
            if (_lastSequence == 0)
            {
                _horizon = sequence == 0 ? 0 : sequence - 1;
            }

            _lastSequence = Math.Max(_lastSequence, sequence);
        }
    }

    private void Publish(JobChange change)
    {
        lock (_gate)
        {
            _recent.Enqueue(change);
            while (_recent.Count > ResumeCapacity)
            {
                _horizon = _recent.Dequeue().Sequence;
            }

            foreach (var subscription in _subscriptions)
            {
                subscription.Add(change);
            }
        }
    }

    /// <summary>
    /// A job this feed saw no submission of (submitted before this API started, or forgotten): its
    /// tenant from the store, once. Unknown (not recorded yet, or the store away): null, and the
    /// change reaches the operator's streams only, never a tenant's by guess.
    /// </summary>
    private async Task<string?> LookUpAsync(Guid job, CancellationToken ct)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            await using var session = store.QuerySession();
            if (await session.LoadAsync<Projections.JobStatus.JobStatus>(job, timeout.Token) is { } status)
            {
                _tenants.Remember(job, status.Tenant);
                return status.Tenant;
            }
        }
        catch (Exception e) when (e is OperationCanceledException && !ct.IsCancellationRequested || Projections.Outages.IsOutage(e))
        {
        }

        return null;
    }

    [LoggerMessage(LogLevel.Warning, "Following the event log for the dashboard's live streams failed, resuming in about 1 s: {Reason}")]
    private static partial void LogRestart(ILogger logger, string reason);
}
