using CqrsInference.Messaging;
using CqrsInference.Processors.Worker.Gating;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.Services;

namespace CqrsInference.Processors.Worker.Fetching;

/// <summary>
/// The processor's side of the interactive path: a NATS service (<c>cqrsi-processor</c>, so
/// <c>nats micro</c> tooling lists and measures it) with one endpoint per model on
/// <c>cqrsi.infer.&lt;region&gt;.&lt;model&gt;</c>, queue group the same subject, so one processor of the
/// region takes each request. A request is a job message, as the queue would carry it; it joins the
/// slots' batches next to the queued jobs when there is a free place, and is refused at once (503)
/// when there is none, so the caller tries another region or the queue without waiting.
/// </summary>
internal sealed partial class InteractiveServer(INatsConnection nats, ProcessorOptions options, ILogger<InteractiveServer> logger) : IAsyncDisposable
{
    private INatsSvcServer? _service;

    /// <summary>
    /// Answers the worker's model's interactive jobs from now on (the service starts with the first).
    /// Never fails the processor: while NATS is away the subscription waits for the reconnect, and
    /// a model whose endpoint could not be added is still served from its queues.
    /// </summary>
    public async Task AddAsync(ModelWorker worker, CancellationToken ct)
    {
        var subject = NatsInteractiveRuns.Subject(options.Region, worker.Model);
        try
        {
            _service ??= await new NatsSvcContext(nats).AddServiceAsync(
                new NatsSvcConfig("cqrsi-processor", "1.0.0") { Description = $"Interactive inference in region {options.Region}" }, ct);
            await _service.AddEndpointAsync<byte[]>(msg => OfferAsync(worker, msg), name: worker.Model, subject: subject, queueGroup: subject, cancellationToken: ct);

            // The server has the subscription once it answers a ping: from then on requests find this processor.
            await nats.PingAsync(ct);
            LogServing(logger, worker.Model, subject);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            LogNotConfirmed(logger, worker.Model, subject, e.Message);
        }
    }

    /// <summary>Stops answering: new requests find no responder here (or another processor).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_service is { } service)
        {
            await service.DisposeAsync();
        }
    }

    private async ValueTask OfferAsync(ModelWorker worker, NatsSvcMsg<byte[]> msg)
    {
        if (JobGate.Decode(msg.Data) is not { } job || job.Model != worker.Model)
        {
            await msg.ReplyErrorAsync(400, $"not a job of model {worker.Model}");
            return;
        }

        var queue = JobQueue.Of(job);
        var delivery = new JobDelivery(queue, LogSubjects.Served(queue, job.JobId), msg.Data, TraceHeaders.Extract(msg.Headers), 0, 1, new InteractiveReply(msg, options.Region))
        {
            Decoded = job,
        };
        if (!worker.TryTakeInteractive(delivery))
        {
            await msg.ReplyErrorAsync(NatsInteractiveRuns.BusyCode, "no free place");
        }
    }

    [LoggerMessage(LogLevel.Warning, "Interactive endpoint for {Model} on {Subject} not confirmed by the server ({Reason}); its queues are served, and the subscription waits for the reconnect")]
    private static partial void LogNotConfirmed(ILogger logger, string model, string subject, string reason);

    [LoggerMessage(LogLevel.Information, "Serving {Model} interactively on {Subject}")]
    private static partial void LogServing(ILogger logger, string model, string subject);
}
