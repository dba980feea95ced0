using System.Diagnostics;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using Marten;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;

namespace CqrsInference.Projections.Recording;

/// <summary>
/// Records the edge sites' events (the core's <c>CQRSI_EDGE</c> stream, which sources every site)
/// into Marten, one event stream per site, with the same loop as the job log. On top of the loop's
/// exactly-once, each event's id is derived from its message id (site, item, segment) under
/// Marten's unique index, so a copy that reached the core twice (an item redone at the site after
/// the duplicate window, say) is recorded once. It writes only the sites' streams, and a site only
/// its own: the site is the one the subject names (the core sources from each site's domain only
/// that site's subjects, <see cref="EdgeTopology.EnsureCoreAsync"/>), never the one the payload
/// claims; an event that claims another site is skipped and logged.
/// </summary>
internal sealed partial class EdgeRecorder(INatsJSContext js, IDocumentStore store, EdgeOptions edge, RecorderOptions options, ILogger<EdgeRecorder> logger, OutageWatches? watches = null)
    : MartenLogRecorder(js, store, options, EdgeSource, logger, watches)
{
    public static readonly LogSource EdgeSource = new(EdgeTopology.CoreStream, EdgeTopology.RecorderConsumer, null, "edge-recorder", "cqrsi-edge-recorder",
        "Records every edge site's events into Marten; positioned from the checkpoint.");

    protected override bool Enabled => edge.Sites.Count > 0;

    protected override async Task<int> AppendAsync(IReadOnlyList<INatsJSMsg<byte[]>> run, IReadOnlyList<Activity?> spans, IDocumentSession session, CancellationToken ct)
    {
        var decoded = new List<(Guid Id, string Site, object Event)>(run.Count);
        foreach (var msg in run)
        {
            try
            {
                var site = EdgeTopology.SiteOfSubject(msg.Subject)
                    ?? throw new InvalidDataException("the subject is not edge.<site>.<kind>");
                var @event = EdgeTopology.Decode(msg.Headers, msg.Data)
                    ?? throw new InvalidDataException($"unknown event type '{EventWire.TypeOf(msg.Headers)}'");
                var claimed = EdgeEventNames.SiteOf(@event);
                if (claimed != site)
                {
                    LogForeignSite(logger, msg.Subject, LogRun.Sequence(msg), site, claimed);
                    continue;
                }

                decoded.Add((EdgeEventNames.EventId(@event), site, @event));
            }
            catch (Exception e) when (e is InvalidDataException or JsonException or NotSupportedException)
            {
                LogUndecodable(logger, msg.Subject, LogRun.Sequence(msg), e.Message);
            }
        }

        var ids = decoded.Select(d => d.Id).Distinct().ToArray();
        var recorded = (await session.Events.QueryAllRawEvents().Where(e => ids.Contains(e.Id)).Select(e => e.Id).ToListAsync(ct)).ToHashSet();
        var appended = 0;
        foreach (var (id, site, @event) in decoded.Where(d => recorded.Add(d.Id)))
        {
            var wrapper = session.Events.BuildEvent(@event);
            wrapper.Id = id;
            session.Events.Append(EdgeEventNames.SiteStreamId(site), wrapper);
            appended++;
        }

        return appended;
    }

    [LoggerMessage(LogLevel.Error, "Message {Subject} #{Sequence} of the edge stream cannot be recorded and is skipped: {Reason}")]
    private static partial void LogUndecodable(ILogger logger, string subject, ulong sequence, string reason);

    [LoggerMessage(LogLevel.Error, "Message {Subject} #{Sequence} of the edge stream came from site {Site} but claims site {Claimed}: skipped, not recorded")]
    private static partial void LogForeignSite(ILogger logger, string subject, ulong sequence, string site, string claimed);
}
