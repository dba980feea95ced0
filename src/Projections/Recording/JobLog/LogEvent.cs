using System.Diagnostics;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;

namespace CqrsInference.Projections.Recording.JobLog;

/// <summary>A message of the job log as the recorder reads it: its event, the stream it belongs to and the id it is recorded under.</summary>
internal sealed record LogEvent(Guid StreamId, Guid EventId, object Event, ulong Sequence)
{
    public bool IsJobEvent => !EventNames.IsProcessorEvent(Event);
}

/// <summary>
/// Reads the job log's messages: a queued job (<c>log.&lt;p&gt;.jobs.…</c>) is its submission, or its
/// retry when the message queues a later attempt series (with its inline inputs when <c>Recorder:KeepInputs</c>
/// is on); anything else carries its event's wire name.
/// </summary>
internal static partial class LogEventDecoder
{
    public static List<LogEvent> DecodeAll(IReadOnlyList<INatsJSMsg<byte[]>> run, IReadOnlyList<Activity?> spans, ILogger logger, bool keepInputs = false)
    {
        var decoded = new List<LogEvent>(run.Count);
        for (var i = 0; i < run.Count; i++)
        {
            var msg = run[i];
            try
            {
                var @event = Decode(msg, keepInputs);
                decoded.Add(new LogEvent(EventNames.StreamIdOf(@event), JobLifecycle.EventId(@event), @event, LogRun.Sequence(msg)));
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

    private static object Decode(INatsJSMsg<byte[]> msg, bool keepInputs)
    {
        var data = msg.Data ?? [];
        if (LogSubjects.IsJob(msg.Subject))
        {
            var job = JsonSerializer.Deserialize(data, WireJson.Default.JobCommand)
                ?? throw new InvalidDataException($"Empty job message at sequence {LogRun.Sequence(msg)}.");
            return job.ToLogged(data.Length, keepInputs);
        }

        return EventWire.Decode(msg.Headers, data)
            ?? throw new InvalidDataException($"Event at sequence {LogRun.Sequence(msg)} has unknown type '{EventWire.TypeOf(msg.Headers)}'.");
    }

    [LoggerMessage(LogLevel.Error, "Message {Subject} #{Sequence} of the event log cannot be recorded and is skipped: {Reason}")]
    private static partial void LogUndecodable(ILogger logger, string subject, ulong sequence, string reason);
}
