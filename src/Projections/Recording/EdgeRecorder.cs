using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Messaging;
using JasperFx.Events;
using Marten;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Projections.Recording;

/// <summary>
/// Moves the edge sites' events (the core's <c>CQRSI_EDGE</c> stream, which sources every site)
/// into Marten, one event stream per site. The recorder of edge streams, as
/// <see cref="EventRecorder"/> is of job and processor streams: the two write disjoint streams.
/// Exactly-once, the same way: each batch is written in one transaction with the checkpoint (the
/// last <c>CQRSI_EDGE</c> sequence recorded) and only then acknowledged; the consumer is
/// repositioned from the checkpoint on start and whenever delivery skips ahead of it (only an
/// unbroken run of sequences after the checkpoint is recorded); and each event's id is derived from its message id
/// (site, item, segment) under Marten's unique index, so a copy that reached the core twice (an
/// item redone at the site after the duplicate window, say) is recorded once.
/// </summary>
public sealed partial class EdgeRecorder(
    INatsJSContext js,
    IDocumentStore store,
    EdgeOptions edge,
    RecorderOptions options,
    ILogger<EdgeRecorder> logger) : BackgroundService
{
    private const string CheckpointId = "edge-recorder";
    private ulong _checkpoint;

    /// <summary>The last <c>CQRSI_EDGE</c> sequence recorded (the checkpoint).</summary>
    public ulong Position => Volatile.Read(ref _checkpoint);

    /// <summary>Events recorded since start.</summary>
    public long Recorded { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (edge.Sites.Count == 0)
        {
            return;
        }

        await using var leadership = await RecorderLeadership.AcquireAsync(options.ConnectionString, $"cqrsi-edge-recorder:{options.Schema}", logger, stoppingToken);
        Volatile.Write(ref _checkpoint, await RecorderLeadership.LoadCheckpointAsync(store, CheckpointId, stoppingToken));
        await PositionConsumerAsync(stoppingToken);
        LogStarted(logger, _checkpoint);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var consumer = await js.GetConsumerAsync(EdgeTopology.CoreStream, EdgeTopology.RecorderConsumer, stoppingToken);
                while (!stoppingToken.IsCancellationRequested)
                {
                    var batch = new List<INatsJSMsg<byte[]>>();
                    await foreach (var msg in consumer.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = options.BatchSize }, cancellationToken: stoppingToken))
                    {
                        batch.Add(msg);
                    }

                    if (batch.Count == 0)
                    {
                        // Nothing waiting: block (bounded) for the next message rather than spin.
                        var next = await consumer.NextAsync<byte[]>(opts: new NatsJSNextOpts { Expires = TimeSpan.FromSeconds(2) }, cancellationToken: stoppingToken);
                        if (next is { } one)
                        {
                            batch.Add(one);
                        }
                    }

                    if (batch.Count == 0)
                    {
                        continue;
                    }

                    if (!await LogRun.RecordInOrderAsync(js, EdgeTopology.CoreStream, batch, () => _checkpoint, run => RecordAsync(run, stoppingToken), logger, stoppingToken))
                    {
                        // A gap: messages after the checkpoint were delivered but never arrived (a
                        // connection lost mid-fetch leaves them pending until their ack wait ends).
                        // Recording past them would skip them for good, so start again from the
                        // checkpoint, in order.
                        LogGap(logger, _checkpoint);
                        await PositionConsumerAsync(stoppingToken);
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException)
            {
                // The core's nats-server is away: what was not acknowledged is delivered again.
                LogConsumeError(logger, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>Records one batch in one transaction; returns the number of events appended.</summary>
    internal async Task<int> RecordAsync(IReadOnlyList<INatsJSMsg<byte[]>> batch, CancellationToken ct)
    {
        var fresh = batch.Where(m => Sequence(m) > _checkpoint).DistinctBy(Sequence).OrderBy(Sequence).ToList();
        if (fresh.Count == 0)
        {
            return 0;
        }

        var decoded = new List<(Guid Id, object Event)>(fresh.Count);
        foreach (var msg in fresh)
        {
            try
            {
                var @event = EdgeTopology.Decode(msg.Headers, msg.Data)
                    ?? throw new InvalidDataException($"unknown event type '{EventWire.TypeOf(msg.Headers)}'");
                decoded.Add((EdgeEventNames.EventId(@event), @event));
            }
            catch (Exception e) when (e is InvalidDataException or JsonException or NotSupportedException)
            {
                LogUndecodable(logger, msg.Subject, Sequence(msg), e.Message);
            }
        }

        await using var session = store.LightweightSession();
        var ids = decoded.Select(d => d.Id).Distinct().ToArray();
        var recorded = (await session.Events.QueryAllRawEvents().Where(e => ids.Contains(e.Id)).Select(e => e.Id).ToListAsync(ct)).ToHashSet();
        var appended = 0;
        foreach (var (id, @event) in decoded)
        {
            if (!recorded.Add(id))
            {
                continue;
            }

            var wrapper = session.Events.BuildEvent(@event);
            wrapper.Id = id;
            session.Events.Append(EdgeEventNames.SiteStreamId(EdgeEventNames.SiteOf(@event)), wrapper);
            appended++;
        }

        var last = Sequence(fresh[^1]);
        session.Store(new RecorderCheckpoint(CheckpointId, last));
        await session.SaveChangesAsync(ct);
        Volatile.Write(ref _checkpoint, last);
        Recorded += appended;
        return appended;
    }

    private static ulong Sequence(INatsJSMsg<byte[]> msg) => msg.Metadata?.Sequence.Stream ?? 0;

    /// <summary>Recreates the durable consumer to deliver from the message after the checkpoint (see <see cref="EventRecorder"/>).</summary>
    private async Task PositionConsumerAsync(CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                try
                {
                    await js.DeleteConsumerAsync(EdgeTopology.CoreStream, EdgeTopology.RecorderConsumer, ct);
                }
                catch (NatsJSApiException e) when (e.Error.Code == 404 && e.Error.ErrCode != 10059)
                {
                }

                await js.CreateOrUpdateConsumerAsync(
                    EdgeTopology.CoreStream,
                    new ConsumerConfig(EdgeTopology.RecorderConsumer)
                    {
                        AckPolicy = ConsumerConfigAckPolicy.Explicit,
                        AckWait = options.AckWait,
                        MaxAckPending = 50_000,
                        DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartSequence,
                        OptStartSeq = _checkpoint + 1,
                        Description = "Records every edge site's events into Marten; positioned from the checkpoint.",
                    },
                    ct);
                return;
            }
            catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException && !ct.IsCancellationRequested)
            {
                // The API process creates CQRSI_EDGE; until it exists (or the server is back), wait.
                if (attempt == 1 || attempt % 20 == 0)
                {
                    LogConsumeError(logger, e.Message);
                }

                await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
            }
        }
    }

    [LoggerMessage(LogLevel.Information, "Edge recorder started after CQRSI_EDGE sequence {Sequence}")]
    private static partial void LogStarted(ILogger logger, ulong sequence);

    [LoggerMessage(LogLevel.Warning, "Consuming the edge stream failed: {Reason}")]
    private static partial void LogConsumeError(ILogger logger, string reason);

    [LoggerMessage(LogLevel.Warning, "Edge stream delivery skipped ahead of checkpoint {Sequence}; repositioning the consumer")]
    private static partial void LogGap(ILogger logger, ulong sequence);

    [LoggerMessage(LogLevel.Error, "Message {Subject} #{Sequence} of the edge stream cannot be recorded and is skipped: {Reason}")]
    private static partial void LogUndecodable(ILogger logger, string subject, ulong sequence, string reason);
}
