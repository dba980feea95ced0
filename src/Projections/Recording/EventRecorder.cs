using System.Text.Json;
using System.Threading.Channels;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Messaging;
using JasperFx;
using JasperFx.Events;
using Marten;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace CqrsInference.Projections.Recording;

/// <summary>How far the recorder has recorded the event log (its JetStream stream sequence).</summary>
public sealed record RecorderCheckpoint(string Id, ulong Sequence);

/// <summary>
/// Moves the event log (JetStream EVENTS) into Marten, one event stream per job, in batches.
/// Exactly-once recording: each batch is written in one transaction together with the checkpoint
/// (the last stream sequence recorded), and only then acknowledged; a replayed batch is skipped by
/// sequence, and event ids are deterministic under a unique index. Only one recorder records at a
/// time (a PostgreSQL advisory lock); others wait on standby.
/// </summary>
public sealed partial class EventRecorder(
    INatsJSContext js,
    IDocumentStore store,
    RecorderOptions options,
    ILogger<EventRecorder> logger) : BackgroundService
{
    private const string CheckpointId = "recorder";
    private const int MaxOrphanRetries = 20;
    private int _orphanRetries;
    private ulong _checkpoint;

    /// <summary>Events recorded since start (for tests and metrics).</summary>
    public long Recorded { get; private set; }

    /// <summary>The last event log sequence recorded (the checkpoint).</summary>
    public ulong Position => Volatile.Read(ref _checkpoint);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await using var leadership = await RecorderLeadership.AcquireAsync(options.ConnectionString, $"cqrsi-recorder:{options.Schema}", logger, stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            try
            {
                await RecordFromCheckpointAsync(attempt.Token);
            }
            catch (Exception e) when (e is NatsException or TimeoutException or RecorderGapException && !stoppingToken.IsCancellationRequested)
            {
                // NATS unreachable or its stream electing a leader: start again from the checkpoint,
                // which names exactly what PostgreSQL holds, so nothing is skipped or recorded twice.
                await attempt.CancelAsync();
                LogRestarting(logger, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private async Task RecordFromCheckpointAsync(CancellationToken stoppingToken)
    {
        _checkpoint = await RecorderLeadership.LoadCheckpointAsync(store, CheckpointId, stoppingToken);
        await PositionConsumerAsync(stoppingToken);
        LogStarted(logger, _checkpoint);

        var channel = Channel.CreateBounded<INatsJSMsg<byte[]>>(new BoundedChannelOptions(options.BatchSize * 4) { SingleReader = true, SingleWriter = true });
        using var pumping = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var pump = PumpAsync(channel.Writer, pumping.Token);
        var batch = new List<INatsJSMsg<byte[]>>(options.BatchSize);
        try
        {
            while (await channel.Reader.WaitToReadAsync(stoppingToken))
            {
                batch.Clear();
                while (batch.Count < options.BatchSize && channel.Reader.TryRead(out var msg))
                {
                    batch.Add(msg);
                }

                if (!await LogRun.RecordInOrderAsync(js, NatsTopology.EventsStream, batch, () => _checkpoint, run => RecordAsync(run, stoppingToken), logger, stoppingToken))
                {
                    // A gap (see LogRun): start again from the checkpoint, in order.
                    throw new RecorderGapException(_checkpoint);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            await pumping.CancelAsync();
            await pump.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task PumpAsync(ChannelWriter<INatsJSMsg<byte[]>> writer, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var consumer = await js.GetConsumerAsync(NatsTopology.EventsStream, NatsTopology.RecorderConsumer, ct);
                await foreach (var msg in consumer.ConsumeAsync<byte[]>(opts: new NatsJSConsumeOpts { MaxMsgs = options.BatchSize * 2 }, cancellationToken: ct))
                {
                    await writer.WriteAsync(msg, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (NatsJSProtocolException e)
            {
                LogConsumeError(logger, e.Message);
            }
            catch (NatsJSException e)
            {
                LogConsumeError(logger, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        writer.TryComplete();
    }

    /// <summary>Records one batch in one transaction; returns the number of events appended.</summary>
    internal async Task<int> RecordAsync(IReadOnlyList<INatsJSMsg<byte[]>> batch, CancellationToken ct)
    {
        var fresh = batch.Where(m => Sequence(m) > _checkpoint).DistinctBy(Sequence).OrderBy(Sequence).ToList();
        if (fresh.Count == 0)
        {
            return 0;
        }

        // A span per recorded message, continuing the trace its publisher carried in the headers.
        var spans = fresh.Select(m =>
        {
            var span = Telemetry.Source.StartActivity("event.record", System.Diagnostics.ActivityKind.Consumer, Telemetry.Extract(m.Headers));
            span?.SetTag("cqrsi.subject", m.Subject);
            return span;
        }).ToList();
        try
        {
            return await RecordDecodedAsync(fresh, spans, ct);
        }
        finally
        {
            spans.ForEach(s => s?.Dispose());
        }
    }

    private async Task<int> RecordDecodedAsync(List<INatsJSMsg<byte[]>> fresh, List<System.Diagnostics.Activity?> spans, CancellationToken ct)
    {
        var decoded = new List<(Guid JobId, Guid EventId, object Event)>(fresh.Count);
        for (var i = 0; i < fresh.Count; i++)
        {
            var msg = fresh[i];
            try
            {
                decoded.Add(Decode(msg));
                spans[i]?.SetTag(Telemetry.JobIdTag, decoded[^1].JobId.ToString());
            }
            catch (Exception e) when (e is InvalidDataException or JsonException or NotSupportedException)
            {
                // Not ours to record (a foreign or corrupt message): it stays in the JetStream log
                // for inspection, and recording goes on.
                LogUndecodable(logger, msg.Subject, Sequence(msg), e.Message);
            }
        }

        await using var session = store.LightweightSession();

        // The recorder is the only writer of events, so a job's stream exists exactly when its
        // submission event is recorded. Ask which of this batch's events, and which of its jobs'
        // submissions, are recorded already.
        var jobIds = decoded.Where(d => !EventNames.IsProcessorEvent(d.Event)).Select(d => d.JobId).Distinct().ToArray();
        var submissionIds = jobIds.ToDictionary(id => DeterministicGuid.ForEvent(id, EventNames.JobSubmitted, 0));
        var eventIds = decoded.Select(d => d.EventId).Concat(submissionIds.Keys).Distinct().ToArray();
        var recordedIds = (await session.Events.QueryAllRawEvents().Where(e => eventIds.Contains(e.Id)).Select(e => e.Id).ToListAsync(ct)).ToHashSet();
        var recordedJobs = submissionIds.Where(p => recordedIds.Contains(p.Key)).Select(p => p.Value).ToHashSet();

        // Statuses only answer "already terminal?" (the API may have written a provisional
        // queued status before this submission is recorded; it says nothing about the stream).
        var statuses = (await session.LoadManyAsync<JobStatus.JobStatus>(ct, jobIds)).ToDictionary(s => s.Id, s => s.Status);
        var orphans = decoded.Where(d => d.Event is not V1.JobSubmitted && !EventNames.IsProcessorEvent(d.Event) && !recordedJobs.Contains(d.JobId)
            && !decoded.Any(s => s.JobId == d.JobId && s.Event is V1.JobSubmitted)).ToList();
        if (orphans.Count > 0 && ++_orphanRetries <= MaxOrphanRetries)
        {
            // Cannot happen by design (a job's submission precedes its events in the log); if it
            // does, wait and read again rather than lose the event.
            throw new OrphanEventException($"{orphans.Count} events of jobs with no recorded submission, e.g. job {orphans[0].JobId}");
        }

        _orphanRetries = 0;

        var appended = 0;
        foreach (var item in decoded)
        {
            if (recordedIds.Contains(item.EventId))
            {
                continue;
            }

            if (EventNames.IsProcessorEvent(item.Event))
            {
                // Capacity facts: one stream per processor, no job rules apply.
                session.Events.Append(item.JobId, WrapWithId(session, item.Event, item.EventId));
            }
            else if (item.Event is V1.JobSubmitted)
            {
                session.Events.StartStream<JobStatus.JobStatus>(item.JobId, WrapWithId(session, item.Event, item.EventId));
                recordedJobs.Add(item.JobId);
                statuses.TryAdd(item.JobId, JobStatuses.Queued);
            }
            else
            {
                if (!recordedJobs.Contains(item.JobId))
                {
                    LogOrphan(logger, item.JobId, EventNames.Of(item.Event));
                    continue;
                }

                var status = statuses.GetValueOrDefault(item.JobId, JobStatuses.Queued);
                if (JobStatuses.IsTerminal(status))
                {
                    // A redelivered job ran again after its terminal event: the first result stands.
                    LogAfterTerminal(logger, item.JobId, EventNames.Of(item.Event));
                    continue;
                }

                session.Events.Append(item.JobId, WrapWithId(session, item.Event, item.EventId));
                statuses[item.JobId] = item.Event switch
                {
                    V1.JobSucceeded => JobStatuses.Succeeded,
                    V1.JobFailed => JobStatuses.Failed,
                    V1.JobCancelled => JobStatuses.Cancelled,
                    V1.JobExpired => JobStatuses.Expired,
                    V1.JobStarted => JobStatuses.Running,
                    _ => JobStatuses.Queued,
                };
            }

            recordedIds.Add(item.EventId);
            appended++;
        }

        var last = Sequence(fresh[^1]);
        session.Store(new RecorderCheckpoint(CheckpointId, last));
        await session.SaveChangesAsync(ct);
        _checkpoint = last;
        Recorded += appended;
        return appended;
    }

    private static IEvent WrapWithId(IDocumentSession session, object @event, Guid id)
    {
        var wrapper = session.Events.BuildEvent(@event);
        wrapper.Id = id;
        return wrapper;
    }

    private static ulong Sequence(INatsJSMsg<byte[]> msg) => LogRun.Sequence(msg);

    private static (Guid JobId, Guid EventId, object Event) Decode(INatsJSMsg<byte[]> msg)
    {
        var data = msg.Data ?? [];
        if (msg.Subject.StartsWith("jobs.", StringComparison.Ordinal))
        {
            var job = JsonSerializer.Deserialize(data, WireJson.Default.JobCommand)
                ?? throw new InvalidDataException($"Empty job message at sequence {Sequence(msg)}.");
            return (job.JobId, DeterministicGuid.ForEvent(job.JobId, EventNames.JobSubmitted, 0), job.ToSubmitted(data.Length));
        }

        var typeName = EventWire.TypeOf(msg.Headers);
        if (typeName is null || !EventNames.Types.TryGetValue(typeName, out var type))
        {
            throw new InvalidDataException($"Event at sequence {Sequence(msg)} has unknown type '{typeName}'.");
        }

        var @event = JsonSerializer.Deserialize(data, type, WireJson.Default)
            ?? throw new InvalidDataException($"Empty event at sequence {Sequence(msg)}.");
        var streamId = EventNames.StreamIdOf(@event);
        var discriminator = @event switch
        {
            V1.JobStarted e => e.Attempt.ToString(System.Globalization.CultureInfo.InvariantCulture),
            V1.JobAttemptFailed e => e.Attempt.ToString(System.Globalization.CultureInfo.InvariantCulture),
            V1.ProcessorOnline e => e.At.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture),
            V1.ProcessorHeartbeat e => e.At.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture),
            V1.ProcessorOffline e => e.At.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => "0",
        };
        return (streamId, DeterministicGuid.Create(streamId, $"{typeName}\n{discriminator}"), @event);
    }

    /// <summary>
    /// The checkpoint in PostgreSQL, not the consumer's ack state, says where recording resumes: the
    /// leader recreates the durable consumer to deliver from the message after it. Delivery is then
    /// in log order, so a batch left unacknowledged by a crash is delivered again before anything
    /// newer, and anything at or below the checkpoint is known to be recorded.
    /// </summary>
    private async Task PositionConsumerAsync(CancellationToken ct)
    {
        try
        {
            await js.DeleteConsumerAsync(NatsTopology.EventsStream, NatsTopology.RecorderConsumer, ct);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
        }

        await js.CreateOrUpdateConsumerAsync(
            NatsTopology.EventsStream,
            new NATS.Client.JetStream.Models.ConsumerConfig(NatsTopology.RecorderConsumer)
            {
                AckPolicy = NATS.Client.JetStream.Models.ConsumerConfigAckPolicy.Explicit,
                AckWait = options.AckWait,
                MaxAckPending = 50_000,
                DeliverPolicy = NATS.Client.JetStream.Models.ConsumerConfigDeliverPolicy.ByStartSequence,
                OptStartSeq = _checkpoint + 1,
                Description = "Records every submission and lifecycle event into Marten; positioned from the checkpoint.",
            },
            ct);
    }

    [LoggerMessage(LogLevel.Information, "Recorder started after event log sequence {Sequence}")]
    private static partial void LogStarted(ILogger logger, ulong sequence);

    [LoggerMessage(LogLevel.Warning, "Consuming the event log failed: {Reason}")]
    private static partial void LogConsumeError(ILogger logger, string reason);

    [LoggerMessage(LogLevel.Error, "Event {EventType} of job {JobId} has no recorded submission; skipped")]
    private static partial void LogOrphan(ILogger logger, Guid jobId, string eventType);

    [LoggerMessage(LogLevel.Error, "Message {Subject} #{Sequence} of the event log cannot be recorded and is skipped: {Reason}")]
    private static partial void LogUndecodable(ILogger logger, string subject, ulong sequence, string reason);

    [LoggerMessage(LogLevel.Warning, "Recording paused, restarting from the checkpoint: {Reason}")]
    private static partial void LogRestarting(ILogger logger, string reason);

    [LoggerMessage(LogLevel.Debug, "Event {EventType} of job {JobId} arrived after its terminal event; skipped")]
    private static partial void LogAfterTerminal(ILogger logger, Guid jobId, string eventType);
}

public sealed class OrphanEventException(string message) : Exception(message);

public sealed class RecorderOptions
{
    public int BatchSize { get; set; } = 500;

    public TimeSpan AckWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Connection for the leadership lock (held for the recorder's lifetime).</summary>
    public string ConnectionString { get; set; } = "";

    public string Schema { get; set; } = "cqrsi";
}

/// <summary>Messages after the checkpoint arrived with a hole before them: recording restarts from the checkpoint.</summary>
internal sealed class RecorderGapException(ulong checkpoint) : Exception($"Messages after event log sequence {checkpoint} arrived with a hole before them");
