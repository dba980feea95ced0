using System.Diagnostics;
using System.Threading.Channels;
using CqrsInference.Commands;
using CqrsInference.Messaging;
using Marten;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Projections.Recording;

/// <summary>
/// The one recorder loop, for every log recorded into Marten (each partition of the job log, the
/// edge sites' log): only the leader records (a PostgreSQL advisory lock; others stand by); it
/// positions its durable consumer from the checkpoint, consumes in batches, records only what
/// continues the deliveries without a hole (<see cref="LogRun"/>) in one transaction with the new
/// checkpoint, and only then acknowledges (one acknowledgement for the run: the consumer acknowledges
/// everything up to a message). NATS trouble or a hole starts it again from the checkpoint, which
/// names exactly what PostgreSQL holds, so nothing is skipped or recorded twice.
/// </summary>
internal abstract partial class LogRecorder(INatsJSContext js, IDocumentStore store, RecorderOptions options, LogSource source, ILogger logger, OutageWatches? watches)
    : BackgroundService
{
    /// <summary>How often at most an idle leader writes how far it has seen the stream (<see cref="SeenUpTo"/>).</summary>
    internal static readonly TimeSpan MarkSeenEvery = TimeSpan.FromSeconds(5);

    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For(source.Consumer);
    private readonly LogRun _run = new(logger);
    private ulong _checkpoint;
    private ulong _seen;
    private string? _seenId;
    private long _seenMarkedAt;

    /// <summary>The last log sequence recorded (the checkpoint).</summary>
    public ulong Position => Volatile.Read(ref _checkpoint);

    /// <summary>
    /// Every message of this recorder's subjects up to this stream sequence is recorded: the
    /// checkpoint, or further when the stream has gone on with only other subjects' messages (the
    /// other partitions') and an idle leader saw so. Kept beside the checkpoint, per stream
    /// incarnation, so that messages that leave the stream by age after a quiet time on these
    /// subjects are not taken for messages never recorded.
    /// </summary>
    public ulong SeenUpTo => Math.Max(Position, Volatile.Read(ref _seen));

    /// <summary>Events recorded since start.</summary>
    public long Recorded { get; private set; }

    public LogSource Source => source;

    protected IDocumentStore Store => store;

    /// <summary>The fencing token of the lease this recorder leads under; every recording transaction checks it.</summary>
    protected RecorderFence? Fence { get; private set; }

    /// <summary>Whether there is anything to record here (the edge log exists only with edge sites).</summary>
    protected virtual bool Enabled => true;

    /// <summary>
    /// Records a run (every message after the checkpoint, in order) and the new checkpoint
    /// <paramref name="last"/> in one transaction. <paramref name="spans"/> has each message's
    /// <c>event.record</c> span (or null), for the recorder to tag. Returns the events appended.
    /// </summary>
    protected abstract Task<int> RecordAsync(IReadOnlyList<INatsJSMsg<byte[]>> run, IReadOnlyList<Activity?> spans, RecorderCheckpoint last, CancellationToken ct);

    /// <summary>Recording starts again from the checkpoint: what the recorder remembers of earlier batches may be stale.</summary>
    protected virtual void OnRestart()
    {
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled)
        {
            return;
        }

        // Whatever went wrong (the schema not there yet at first start, say), a recorder never
        // stops its host: it tries to lead again.
        var again = Retries.Restart(TimeSpan.FromSeconds(2), _ => true, f => Failed(f.Exception, LogLeadFailed));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await again.ExecuteAsync(LeadOneTermAsync, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>A server away is logged once per outage, by the role's watch; anything else (a hole in delivery, a bug) by <paramref name="log"/>, each time.</summary>
    private void Failed(Exception e, Action<ILogger, string, string> log)
    {
        if (Outages.IsOutage(e))
        {
            _watch.Failed(e);
        }
        else
        {
            log(logger, source.Consumer, e.GetBaseException().Message);
        }
    }

    /// <summary>Wins the lock, then records while it holds it; returns when it stops leading (lost lock, fenced off) or is stopped.</summary>
    private async ValueTask LeadOneTermAsync(CancellationToken stoppingToken)
    {
        await using var lease = await RecorderLease.AcquireAsync(options.ConnectionString, options.Schema, $"{source.LockName}:{options.Schema}", logger, stoppingToken, _watch);
        Fence = lease.Fence;
        using var leading = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, lease.Lost);
        await LeadAsync(leading.Token);
    }

    /// <summary>Records while this process leads; returns when it stops leading or is stopped.</summary>
    private async Task LeadAsync(CancellationToken ct)
    {
        // NATS or PostgreSQL unreachable, the stream electing a leader, or a hole in delivery:
        // start again from the checkpoint.
        var restart = Retries.Restart(
            TimeSpan.FromSeconds(1),
            e => e is NatsException or RecorderGapException || Outages.IsOutage(e),
            f => Failed(f.Exception, LogRestarting));
        try
        {
            await restart.ExecuteAsync(async attempt => await RecordFromCheckpointAsync(attempt), ct);
        }
        catch (Exception e) when (RecorderFence.Refused(e))
        {
            LogFenced(logger, source.Consumer, Fence?.Term ?? 0);
        }
    }

    private async Task RecordFromCheckpointAsync(CancellationToken ct)
    {
        OnRestart();
        Volatile.Write(ref _checkpoint, await RecorderLease.LoadCheckpointAsync(store, source.CheckpointId, ct));
        await PositionConsumerAsync(ct);
        _watch.Worked();
        LogStarted(logger, source.Consumer, _checkpoint);

        var channel = Channel.CreateBounded<INatsJSMsg<byte[]>>(new BoundedChannelOptions(options.BatchSize * 4) { SingleReader = true, SingleWriter = true });
        using var pumping = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var pump = PumpAsync(channel.Writer, pumping.Token);
        var batch = new List<INatsJSMsg<byte[]>>(options.BatchSize);
        try
        {
            while (await WaitForDeliveriesAsync(channel.Reader, ct))
            {
                if (options.Linger > TimeSpan.Zero && channel.Reader.Count < options.BatchSize)
                {
                    await Task.Delay(options.Linger, ct);
                }

                batch.Clear();
                while (batch.Count < options.BatchSize && channel.Reader.TryRead(out var msg))
                {
                    batch.Add(msg);
                }

                await RecordBatchAsync(batch, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping: how far the stream was seen, so that a stop longer than the stream's
            // maximum age is not read as loss at the next start.
            using var last = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await ((Task)MarkSeenAsync(channel.Reader, force: true, last.Token)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        finally
        {
            await pumping.CancelAsync();
            await pump.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>
    /// Waits for the next deliveries. While none come, it asks the consumer now and then how many it
    /// delivered: more than arrived here means a delivery lost at the tail (no later one arrives to
    /// show the hole), and recording starts again from the checkpoint instead of waiting for the ack
    /// wait to redeliver it.
    /// </summary>
    private async Task<bool> WaitForDeliveriesAsync(ChannelReader<INatsJSMsg<byte[]>> reader, CancellationToken ct)
    {
        while (true)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
            idle.CancelAfter(options.IdleCheck);
            try
            {
                return await reader.WaitToReadAsync(idle.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                if (!await MarkSeenAsync(reader, force: false, ct))
                {
                    throw new RecorderGapException(source.Consumer, Position);
                }
            }
        }
    }

    private async Task RecordBatchAsync(List<INatsJSMsg<byte[]>> batch, CancellationToken ct)
    {
        var (fresh, last) = _run.Take(batch, Position, out var whole);
        if (fresh.Count > 0)
        {
            await _run.RecordWithRetryAsync(fresh, () => RecordRunAsync(fresh, ct), source.Consumer, _watch, ct);
            _watch.Worked();
        }

        if (last is not null)
        {
            await last.AckAsync(cancellationToken: ct);
        }

        if (!whole)
        {
            throw new RecorderGapException(source.Consumer, Position);
        }
    }

    private async Task PumpAsync(ChannelWriter<INatsJSMsg<byte[]>> writer, CancellationToken ct)
    {
        var again = Retries.Restart(TimeSpan.FromSeconds(1), e => e is NatsJSException, f => Failed(f.Exception, LogConsumeError));
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await again.ExecuteAsync(
                    async token =>
                    {
                        var consumer = await js.GetConsumerAsync(source.Stream, source.Consumer, token);
                        await foreach (var msg in consumer.ConsumeAsync<byte[]>(opts: new NatsJSConsumeOpts { MaxMsgs = options.BatchSize * 2 }, cancellationToken: token))
                        {
                            await writer.WriteAsync(msg, token);
                        }
                    },
                    ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }

        writer.TryComplete();
    }

    private async Task RecordRunAsync(IReadOnlyList<INatsJSMsg<byte[]>> run, CancellationToken ct)
    {
        // A span per recorded message, continuing the trace its publisher carried in the headers.
        var spans = run.Select(m =>
        {
            var span = Telemetry.Source.StartActivity("event.record", ActivityKind.Consumer, TraceHeaders.Extract(m.Headers));
            span?.SetTag("cqrsi.subject", m.Subject);
            return span;
        }).ToList();
        try
        {
            var last = new RecorderCheckpoint(source.CheckpointId, LogRun.Sequence(run[^1]));
            var appended = await RecordAsync(run, spans, last, ct);
            Volatile.Write(ref _checkpoint, last.Sequence);
            Recorded += appended;
        }
        finally
        {
            spans.ForEach(s => s?.Dispose());
        }
    }
}
