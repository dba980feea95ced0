using NATS.Client.JetStream;

namespace CqrsInference.Messaging;

/// <summary>
/// The layout before the log was partitioned: <c>CQRSI_EVENTS</c> captured <c>jobs.&gt;</c> and
/// <c>events.&gt;</c>, and the work queue held jobs under <c>jobs.&lt;region&gt;…</c>. Its streams are
/// retired when nothing is left in them (every event recorded, no job waiting); otherwise start
/// refuses with what is left, since the new recorders and processors would never see it.
/// </summary>
public static class LegacyLayout
{
    public static async Task RetireAsync(INatsJSContext js, CancellationToken ct)
    {
        INatsJSStream log;
        try
        {
            log = await js.GetStreamAsync(NatsTopology.EventsStream, cancellationToken: ct);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return;
        }

        if (!log.Info.Config.Subjects?.Contains("jobs.>") ?? true)
        {
            return;
        }

        var unrecorded = await PendingAsync(js, NatsTopology.EventsStream, "recorder", ct);
        var waiting = await MessagesAsync(js, NatsTopology.JobsStream, ct);
        if (unrecorded > 0 || waiting > 0)
        {
            throw new InvalidOperationException(
                $"The JetStream layout of an earlier version holds {unrecorded} events not yet recorded and {waiting} jobs not yet run. "
                + "Run the earlier version until its recorder and processors are idle, or remove the nats-server's store to start empty.");
        }

        await js.DeleteStreamAsync(NatsTopology.JobsStream, ct);
        await js.DeleteStreamAsync(NatsTopology.EventsStream, ct);
    }

    private static async Task<long> PendingAsync(INatsJSContext js, string stream, string consumer, CancellationToken ct)
    {
        try
        {
            var info = (await js.GetConsumerAsync(stream, consumer, ct)).Info;
            return (long)info.NumPending + info.NumAckPending;
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return 0;
        }
    }

    private static async Task<long> MessagesAsync(INatsJSContext js, string stream, CancellationToken ct)
    {
        try
        {
            return (long)(await js.GetStreamAsync(stream, cancellationToken: ct)).Info.State.Messages;
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return 0;
        }
    }
}
