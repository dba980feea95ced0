using CqrsInference.Messaging;
using System.Diagnostics;
using Marten;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;

namespace CqrsInference.Projections.Recording;

/// <summary>A recorder that appends through a Marten session: the events and the checkpoint document are saved together.</summary>
internal abstract class MartenLogRecorder(INatsJSContext js, IDocumentStore store, RecorderOptions options, LogSource source, ILogger logger, OutageWatches? watches)
    : LogRecorder(js, store, options, source, logger, watches)
{
    /// <summary>Appends a run's events to the session; returns how many.</summary>
    protected abstract Task<int> AppendAsync(IReadOnlyList<INatsJSMsg<byte[]>> run, IReadOnlyList<Activity?> spans, IDocumentSession session, CancellationToken ct);

    protected sealed override async Task<int> RecordAsync(IReadOnlyList<INatsJSMsg<byte[]>> run, IReadOnlyList<Activity?> spans, RecorderCheckpoint last, CancellationToken ct)
    {
        await using var session = Store.LightweightSession();
        if (Fence is { } fence)
        {
            session.QueueSqlCommand(fence.Sql.Replace("$1", "?", StringComparison.Ordinal).Replace("$2", "?", StringComparison.Ordinal), fence.Key, fence.Term);
        }

        var appended = await AppendAsync(run, spans, session, ct);
        session.Store(last);
        await session.SaveChangesAsync(ct);
        return appended;
    }
}
