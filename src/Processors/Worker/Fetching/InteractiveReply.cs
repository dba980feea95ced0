using CqrsInference.Messaging;
using NATS.Client.Core;
using NATS.Client.Services;

namespace CqrsInference.Processors.Worker.Fetching;

/// <summary>
/// How a job of the interactive path is settled: by answering its caller (the API). The ending is
/// on the event log before any answer (the worker stores events first, then settles), so the
/// answer only says where the job ran; the caller reads the result from the log. A job that should
/// be tried again is answered 500: the caller queues it (the queue's retries, with their backoff).
/// </summary>
internal sealed class InteractiveReply(NatsSvcMsg<byte[]> request, string region) : IDeliveryAck
{
    public Task AckAsync() => RanAsync();

    public Task TerminateAsync() => RanAsync();

    public Task RetryAsync(TimeSpan after) =>
        request.ReplyErrorAsync(500, "the run did not end the job; queue it").AsTask();

    /// <summary>Nothing to keep alive: the caller waits for the answer, not a queue's ack wait.</summary>
    public Task ProgressAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>Another run claimed the job first (the caller's request was retried): not run here; the caller follows the job.</summary>
    public Task TakenAsync() =>
        request.ReplyAsync(headers: new NatsHeaders { [NatsInteractiveRuns.TakenHeader] = "true" }).AsTask();

    private Task RanAsync() =>
        request.ReplyAsync(headers: new NatsHeaders { [NatsInteractiveRuns.RanInHeader] = region }).AsTask();
}
