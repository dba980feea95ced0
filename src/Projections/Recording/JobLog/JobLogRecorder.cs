using System.Diagnostics;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using Marten;
using Microsoft.Extensions.Logging;
using Npgsql;
using NATS.Client.JetStream;

namespace CqrsInference.Projections.Recording.JobLog;

/// <summary>
/// Records one partition of the job log (<c>log.&lt;p&gt;.&gt;</c> of <c>CQRSI_EVENTS</c>: the
/// submissions and lifecycle events of the jobs whose id hashes to it, and processors' capacity facts)
/// into Marten, one event stream per job and per processor. Each partition has its own recorder,
/// checkpoint and leader: any process running the projections role may lead any partition, and the
/// partitions record side by side. Exactly once: the loop's checkpoint in the transaction and its
/// gap rule, each event's id from <see cref="JobLifecycle.EventId"/> under a unique index, and the
/// <see cref="RecordingPlan"/>'s rules (a duplicate or a second ending is dropped).
/// </summary>
internal sealed partial class JobLogRecorder : LogRecorder
{
    private const int MaxOrphanRetries = 20;
    private readonly JobStreams _streams;
    private readonly EventTables _tables;
    private readonly ILogger _logger;
    private readonly WebhookQueue _webhooks;
    private int _orphanRetries;
    private readonly TimeSpan _duplicateWindow;
    private bool _lookUpEveryStream;
    private readonly bool _keepInputs;

    public JobLogRecorder(INatsJSContext js, IDocumentStore store, NpgsqlDataSource db, RecorderOptions options, int partition, ILogger<JobLogRecorder> logger, OutageWatches? watches = null)
        : base(js, store, options, SourceOf(partition), logger, watches)
    {
        Partition = partition;
        _webhooks = new WebhookQueue(js);
        _streams = new JobStreams(store, db, options.Schema, options.CachedJobs);
        _tables = new EventTables(store, db, options.Schema, logger);
        _logger = logger;
        _duplicateWindow = options.DuplicateWindow / 2;
        _keepInputs = options.KeepInputs;
    }

    public int Partition { get; }

    public static LogSource SourceOf(int partition) => new(
        NatsTopology.EventsStream, NatsTopology.RecorderConsumer(partition), LogSubjects.Partition(partition), $"recorder-{partition}", $"cqrsi-recorder-{partition}",
        $"Records partition {partition} of the event log into Marten; positioned from its checkpoint.");

    protected override void OnRestart() => _streams.Clear();

    protected override async Task<int> RecordAsync(IReadOnlyList<INatsJSMsg<byte[]>> run, IReadOnlyList<Activity?> spans, RecorderCheckpoint last, CancellationToken ct)
    {
        var decoded = LogEventDecoder.DecodeAll(run, spans, _logger, _keepInputs);
        var jobEvents = decoded.Where(d => d.IsJobEvent).ToList();
        var known = await _streams.FindAsync(jobEvents.Select(e => e.StreamId).ToHashSet(), SurelyNew(jobEvents), ct);
        var plan = RecordingPlan.Make(jobEvents, known);
        ThrowOnOrphans(plan);

        // Owed before the commit: a run recorded again (a crash in between) owes them again, once.
        await _webhooks.OweAsync(plan.WebhooksOwed(), ct);
        try
        {
            await _tables.WriteAsync(plan, decoded.Where(d => !d.IsJobEvent).ToList(), last, Fence, ct);
        }
        catch (Exception e)
        {
            // What is remembered may now differ from what is stored: read it again. A stream that
            // exists after all (the checkpoint was moved back by hand, say): look every one up.
            _streams.Clear();
            _lookUpEveryStream |= (e as PostgresException ?? e.InnerException as PostgresException) is { SqlState: PostgresErrorCodes.UniqueViolation };
            throw;
        }

        _lookUpEveryStream = false;
        _streams.Remember(plan.Touched);
        LogDropped(plan);
        return plan.Appended.Count + decoded.Count(d => !d.IsJobEvent);
    }

    /// <summary>
    /// The jobs whose streams cannot exist yet, so need no look-up: submitted in this run with an id
    /// the API drew at random (UUIDv7), within half the log's duplicate window of their submission. Such a
    /// submission is in the log once (a second publish inside the window is dropped by JetStream),
    /// and the checkpoint, written with the events, says it was not recorded before. An id derived
    /// from an Idempotency-Key (version 5) may come back after the window, so it is looked up.
    /// </summary>
    private HashSet<Guid> SurelyNew(List<LogEvent> jobEvents)
    {
        var now = DateTimeOffset.UtcNow;
        return _lookUpEveryStream
            ? []
            : jobEvents.Where(e => e.Event is V1.JobSubmitted s && s.JobId.Version == 7 && now - s.SubmittedAt < _duplicateWindow)
                .Select(e => e.StreamId).ToHashSet();
    }

    /// <summary>
    /// A job's submission precedes its events in its partition, so an event of a job with no
    /// recorded submission cannot happen by design; if it does, wait and read again (up to
    /// <see cref="MaxOrphanRetries"/> times) rather than lose it.
    /// </summary>
    private void ThrowOnOrphans(RecordingPlan plan)
    {
        var orphans = plan.Dropped.Where(d => d.Why == DropReason.Orphan).ToList();
        if (orphans.Count > 0 && ++_orphanRetries <= MaxOrphanRetries)
        {
            throw new OrphanEventException($"{orphans.Count} events of jobs with no recorded submission, e.g. job {orphans[0].Event.StreamId}");
        }

        _orphanRetries = 0;
    }

    private void LogDropped(RecordingPlan plan)
    {
        foreach (var (e, why) in plan.Dropped)
        {
            if (why == DropReason.Orphan)
            {
                LogOrphan(_logger, e.StreamId, EventNames.Of(e.Event));
            }
            else
            {
                LogDroppedEvent(_logger, EventNames.Of(e.Event), e.StreamId, why);
            }
        }
    }

    [LoggerMessage(LogLevel.Error, "Event {EventType} of job {JobId} has no recorded submission; skipped")]
    private static partial void LogOrphan(ILogger logger, Guid jobId, string eventType);

    [LoggerMessage(LogLevel.Debug, "Event {EventType} of job {JobId} not recorded: {Why}")]
    private static partial void LogDroppedEvent(ILogger logger, string eventType, Guid jobId, DropReason why);
}

public sealed class OrphanEventException(string message) : Exception(message);
