using System.Runtime.CompilerServices;
using CqrsInference.Messaging;
using NATS.Client.JetStream;

namespace CqrsInference.Processors.Worker.Fetching;

/// <summary>The job queues on JetStream: one durable pull consumer per queue, and the API's core NATS wake-ups.</summary>
internal sealed class NatsJobSource(JobQueues queues, INatsJSContext js, ProcessorOptions options) : IJobSource
{
    public Task<IReadOnlyList<QueueState>> ListAsync(string model, CancellationToken ct) => queues.ListAsync(model, ct);

    public Task<QueueState?> StateAsync(JobQueue queue, CancellationToken ct) => queues.StateAsync(queue, ct);

    public Task<DateTimeOffset?> OldestAsync(JobQueue queue, CancellationToken ct) => queues.OldestAsync(queue, ct);

    public async IAsyncEnumerable<JobDelivery> PullAsync(JobQueue queue, int count, TimeSpan? waitAtServer, [EnumeratorCancellation] CancellationToken ct)
    {
        var consumer = await queues.EnsureAsync(queue, ct);
        var fetched = waitAtServer is { } wait
            ? consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = count, Expires = wait }, cancellationToken: ct)
            : consumer.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = count, Expires = options.PullExpires }, cancellationToken: ct);
        await foreach (var msg in fetched)
        {
            yield return new JobDelivery(
                JobQueue.TryParse(msg.Subject, out var from) ? from : null,
                msg.Subject,
                msg.Data,
                TraceHeaders.Extract(msg.Headers),
                msg.Metadata?.Sequence.Stream ?? 0,
                (int)(msg.Metadata?.NumDelivered ?? 1),
                new NatsDeliveryAck(msg));
        }
    }

    public async IAsyncEnumerable<JobQueue> WakeUpsAsync(string region, string model, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var msg in js.Connection.SubscribeAsync<byte[]>(JobQueues.QueuedSubject(region, model), cancellationToken: ct))
        {
            if (JobQueues.TryParseQueued(msg.Subject, out var queue))
            {
                yield return queue;
            }
        }
    }

    private sealed class NatsDeliveryAck(INatsJSMsg<byte[]> msg) : IDeliveryAck
    {
        public Task AckAsync() => msg.AckAsync().AsTask();

        public Task RetryAsync(TimeSpan after) => msg.NakAsync(delay: after).AsTask();

        public Task TerminateAsync() => msg.AckTerminateAsync().AsTask();

        public Task ProgressAsync(CancellationToken ct) => msg.AckProgressAsync(cancellationToken: ct).AsTask();
    }
}
