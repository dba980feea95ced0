using System.Threading.Channels;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Api.Jobs;

/// <summary>
/// What synchronous submits (<c>?wait</c>) and SSE streams follow: the job lifecycle events the
/// event log has stored, read by one ordered push consumer per API process over the whole log's
/// job events (<c>log.*.events.*.*.*</c>), handed to whoever follows the job the subject names.
/// Only what JetStream stored reaches a caller, so a message published anywhere else (on a core
/// subject, say) cannot pass for a job's result. Following is a dictionary entry, not a
/// subscription: nothing per request reaches the server.
/// </summary>
internal sealed partial class JobEventFeed(INatsJSContext js, ILogger<JobEventFeed> logger, OutageWatches? watches = null) : BackgroundService
{
    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For("job event feed");

    /// <summary>Enough for every event of a job; a follower that falls this far behind loses the newest.</summary>
    private const int FollowerCapacity = 64;

    private readonly Dictionary<Guid, List<Channel<object>>> _followers = [];
    private readonly TaskCompletionSource _live = new(TaskCreationOptions.RunContinuationsAsynchronously); // completes once the feed reads the log
    private ulong? _lastSequence; // null until the feed has found the log's end at its start

    /// <summary>
    /// Starts following a job: every event of it stored from now on; dispose to stop. Waits (at most
    /// <paramref name="patience"/>) for the feed to be live, as it is from shortly after start.
    /// </summary>
    public async Task<Follow> StartAsync(Guid jobId, TimeSpan patience, CancellationToken ct)
    {
        if (!_live.Task.IsCompleted)
        {
#pragma warning disable VSTHRD003 // Completed by this object's own loop, never by a caller's context.
            await _live.Task.WaitAsync(patience, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
#pragma warning restore VSTHRD003
        }

        return Start(jobId);
    }

    private Follow Start(Guid jobId)
    {
        var channel = Channel.CreateBounded<object>(new BoundedChannelOptions(FollowerCapacity) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
        lock (_followers)
        {
            if (!_followers.TryGetValue(jobId, out var list))
            {
                _followers[jobId] = list = [];
            }

            list.Add(channel);
        }

        return new Follow(this, jobId, channel);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var again = Retries.Restart(TimeSpan.FromSeconds(1), _ => true, f =>
        {
            // NATS away: logged once per outage (the watch); anything else each time.
            if (!Projections.Outages.IsOutage(f.Exception))
            {
                LogRestart(logger, f.Exception.Message);
            }
            else
            {
                _watch.Failed(f.Exception);
            }
        });
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await again.ExecuteAsync(
                    async ct =>
                    {
                        // A restarted server has lost the consumer: read on from a new one at once (Reconnects).
                        using var connection = Reconnects.Follow(js.Connection, ct, lost => _watch.Failed(lost));
                        try
                        {
                            var consumer = await js.CreateOrderedPushConsumerAsync(NatsTopology.EventsStream, await OptionsAsync(connection.Token), connection.Token);
                            _live.TrySetResult();
                            await NatsTopology.ConfirmedAsync(js, connection.Token);
                            _watch.Worked();
                            await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: connection.Token))
                            {
                                _lastSequence = msg.Metadata?.Sequence.Stream ?? _lastSequence;
                                Dispatch(msg.Subject, msg);
                            }
                        }
                        catch (OperationCanceledException) when (connection.Reconnected)
                        {
                        }
                    },
                    stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// From the log's end at start (what is new); after a failure or a reconnection, from the event
    /// after the last one read, or after that end if none was read yet: events stored while no
    /// consumer existed are delivered, not skipped.
    /// </summary>
    private async Task<NatsJSOrderedConsumerOpts> OptionsAsync(CancellationToken ct)
    {
        _lastSequence ??= (await js.GetStreamAsync(NatsTopology.EventsStream, cancellationToken: ct)).Info.State.LastSeq;
        return new NatsJSOrderedConsumerOpts
        {
            FilterSubjects = [LogSubjects.AllJobEvents], DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartSequence, OptStartSeq = _lastSequence.Value + 1,
        };
    }

    private void Dispatch(string subject, INatsJSMsg<byte[]> msg)
    {
        var dot = subject.LastIndexOf('.');
        if (!Guid.TryParseExact(subject.AsSpan(dot + 1), "N", out var jobId))
        {
            return;
        }

        Channel<object>[] targets;
        lock (_followers)
        {
            if (!_followers.TryGetValue(jobId, out var list))
            {
                return;
            }

            targets = [.. list];
        }

        // Decoded only for a job someone follows, and only an event of that very job.
        if (EventWire.Decode(msg.Headers, msg.Data) is { } @event && EventNames.JobIdOf(@event) == jobId)
        {
            foreach (var target in targets)
            {
                target.Writer.TryWrite(@event);
            }
        }
    }

    private void Stop(Guid jobId, Channel<object> channel)
    {
        lock (_followers)
        {
            if (_followers.TryGetValue(jobId, out var list) && list.Remove(channel) && list.Count == 0)
            {
                _followers.Remove(jobId);
            }
        }
    }

    /// <summary>One caller following one job.</summary>
    public sealed class Follow(JobEventFeed feed, Guid jobId, Channel<object> channel) : IDisposable
    {
        public ChannelReader<object> Events => channel.Reader;

        public void Dispose() => feed.Stop(jobId, channel);
    }

    [LoggerMessage(LogLevel.Warning, "Following the event log for waiting callers failed, resuming in about 1 s: {Reason}")]
    private static partial void LogRestart(ILogger logger, string reason);
}
