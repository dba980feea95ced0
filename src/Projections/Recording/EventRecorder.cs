using System.Diagnostics;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using JasperFx.Events;
using Marten;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;

namespace CqrsInference.Projections.Recording;

/// <summary>
/// Records the job log (JetStream <c>CQRSI_EVENTS</c>: every submission and lifecycle event, and the
/// processors' capacity facts) into Marten: one event stream per job, one per processor. On top of
/// the loop's exactly-once (checkpoint in the transaction, gap rule), each event's id is
/// <see cref="JobLifecycle.EventId"/> under a unique index, and the terminal rule drops a second
/// ending of a job (a redelivered job whose first result outlived JetStream's duplicate window).
/// </summary>
internal sealed partial class EventRecorder(INatsJSContext js, IDocumentStore store, RecorderOptions options, ILogger<EventRecorder> logger)
    : LogRecorder(js, store, options, Source, logger)
{
    public static readonly LogSource Source = new(NatsTopology.EventsStream, NatsTopology.RecorderConsumer, "recorder", "cqrsi-recorder",
        "Records every submission and lifecycle event into Marten; positioned from the checkpoint.");

    private const int MaxOrphanRetries = 20;
    private int _orphanRetries;

    private sealed record Decoded(Guid StreamId, Guid EventId, object Event)
    {
        public bool IsJobEvent => !EventNames.IsProcessorEvent(Event);
    }

    protected override async Task<int> WriteAsync(IReadOnlyList<INatsJSMsg<byte[]>> run, IReadOnlyList<Activity?> spans, IDocumentSession session, CancellationToken ct)
    {
        var decoded = DecodeAll(run, spans);

        // The recorder is the only writer of job events, so a job's stream exists exactly when its
        // submission is recorded. One query: which of this batch's events, and which of its jobs'
        // submissions, are recorded already.
        var jobIds = decoded.Where(d => d.IsJobEvent).Select(d => d.StreamId).Distinct().ToArray();
        var submissionIds = jobIds.ToDictionary(JobLifecycle.SubmissionEventId);
        var eventIds = decoded.Select(d => d.EventId).Concat(submissionIds.Keys).Distinct().ToArray();
        var recordedIds = (await session.Events.QueryAllRawEvents().Where(e => eventIds.Contains(e.Id)).Select(e => e.Id).ToListAsync(ct)).ToHashSet();
        var recordedJobs = submissionIds.Where(p => recordedIds.Contains(p.Key)).Select(p => p.Value).ToHashSet();

        // Statuses answer only "ended already?" (the API's provisional status says nothing about the stream).
        var statuses = (await session.LoadManyAsync<JobStatus.JobStatus>(ct, jobIds)).ToDictionary(s => s.Id, s => s.Status);
        ThrowOnOrphans(decoded, recordedJobs);

        var appended = 0;
        foreach (var item in decoded.Where(d => !recordedIds.Contains(d.EventId)))
        {
            if (Append(session, item, recordedJobs, statuses))
            {
                recordedIds.Add(item.EventId);
                appended++;
            }
        }

        return appended;
    }

    /// <summary>Appends one event under the rules of its stream; false when the rules drop it.</summary>
    private bool Append(IDocumentSession session, Decoded item, HashSet<Guid> recordedJobs, Dictionary<Guid, string> statuses)
    {
        if (!item.IsJobEvent)
        {
            // Capacity facts: one stream per processor, no job rules apply.
            session.Events.Append(item.StreamId, WithId(session, item));
            return true;
        }

        if (item.Event is V1.JobSubmitted)
        {
            session.Events.StartStream<JobStatus.JobStatus>(item.StreamId, WithId(session, item));
            recordedJobs.Add(item.StreamId);
            statuses.TryAdd(item.StreamId, JobLifecycle.StatusAfter(item.Event));
            return true;
        }

        if (!recordedJobs.Contains(item.StreamId))
        {
            LogOrphan(logger, item.StreamId, EventNames.Of(item.Event));
            return false;
        }

        var status = statuses.GetValueOrDefault(item.StreamId, JobStatuses.Queued);
        if (!JobLifecycle.Changes(status, item.Event))
        {
            // A redelivered job ran again after its ending: the first ending stands.
            LogAfterTerminal(logger, item.StreamId, EventNames.Of(item.Event));
            return false;
        }

        session.Events.Append(item.StreamId, WithId(session, item));
        statuses[item.StreamId] = JobLifecycle.StatusAfter(item.Event);
        return true;
    }

    /// <summary>
    /// A job's submission precedes its events in the log, so an event of a job with no recorded
    /// submission cannot happen by design; if it does, wait and read again rather than lose it.
    /// </summary>
    private void ThrowOnOrphans(List<Decoded> decoded, HashSet<Guid> recordedJobs)
    {
        var orphans = decoded.Where(d => d.IsJobEvent && d.Event is not V1.JobSubmitted && !recordedJobs.Contains(d.StreamId)
            && !decoded.Any(s => s.StreamId == d.StreamId && s.Event is V1.JobSubmitted)).ToList();
        if (orphans.Count > 0 && ++_orphanRetries <= MaxOrphanRetries)
        {
            throw new OrphanEventException($"{orphans.Count} events of jobs with no recorded submission, e.g. job {orphans[0].StreamId}");
        }

        _orphanRetries = 0;
    }

    private List<Decoded> DecodeAll(IReadOnlyList<INatsJSMsg<byte[]>> run, IReadOnlyList<Activity?> spans)
    {
        var decoded = new List<Decoded>(run.Count);
        for (var i = 0; i < run.Count; i++)
        {
            var msg = run[i];
            try
            {
                var @event = Decode(msg);
                decoded.Add(new Decoded(EventNames.StreamIdOf(@event), JobLifecycle.EventId(@event), @event));
                spans[i]?.SetTag(Telemetry.JobIdTag, decoded[^1].StreamId.ToString());
            }
            catch (Exception e) when (e is InvalidDataException or JsonException or NotSupportedException)
            {
                // Not ours to record (a foreign or corrupt message): it stays in the JetStream log
                // for inspection, and recording goes on.
                LogUndecodable(logger, msg.Subject, LogRun.Sequence(msg), e.Message);
            }
        }

        return decoded;
    }

    /// <summary>A queued job (<c>jobs.*</c>) is recorded as its submission; anything else carries its event's wire name.</summary>
    private static object Decode(INatsJSMsg<byte[]> msg)
    {
        var data = msg.Data ?? [];
        if (msg.Subject.StartsWith("jobs.", StringComparison.Ordinal))
        {
            var job = JsonSerializer.Deserialize(data, WireJson.Default.JobCommand)
                ?? throw new InvalidDataException($"Empty job message at sequence {LogRun.Sequence(msg)}.");
            return job.ToSubmitted(data.Length);
        }

        return EventWire.Decode(msg.Headers, data)
            ?? throw new InvalidDataException($"Event at sequence {LogRun.Sequence(msg)} has unknown type '{EventWire.TypeOf(msg.Headers)}'.");
    }

    private static IEvent WithId(IDocumentSession session, Decoded item)
    {
        var wrapper = session.Events.BuildEvent(item.Event);
        wrapper.Id = item.EventId;
        return wrapper;
    }

    [LoggerMessage(LogLevel.Error, "Event {EventType} of job {JobId} has no recorded submission; skipped")]
    private static partial void LogOrphan(ILogger logger, Guid jobId, string eventType);

    [LoggerMessage(LogLevel.Error, "Message {Subject} #{Sequence} of the event log cannot be recorded and is skipped: {Reason}")]
    private static partial void LogUndecodable(ILogger logger, string subject, ulong sequence, string reason);

    [LoggerMessage(LogLevel.Debug, "Event {EventType} of job {JobId} arrived after its terminal event; skipped")]
    private static partial void LogAfterTerminal(ILogger logger, Guid jobId, string eventType);
}

public sealed class OrphanEventException(string message) : Exception(message);
