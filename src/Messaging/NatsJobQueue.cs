using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using NATS.Client.JetStream;

namespace CqrsInference.Messaging;

/// <summary>Puts jobs on their work queue: one publish that JetStream stores in the event log and the queue.</summary>
public sealed class NatsJobQueue(INatsJSContext js, JobQueues queues) : IJobQueue
{
    public async Task<(bool Duplicate, int Bytes)> PublishAsync(JobCommand job, CancellationToken ct)
    {
        var payload = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(job, WireJson.Default.JobCommand);
        var headers = new NATS.Client.Core.NatsHeaders();
        TraceHeaders.Inject(System.Diagnostics.Activity.Current, headers);
        // The queue's consumer exists before its first job, so that processors listing the
        // consumers find every queue that holds work.
        var queue = JobQueue.Of(job);
        await queues.EnsureAsync(queue, ct);
        var ack = await js.PublishAsync(
            LogSubjects.Job(queue, job.JobId),
            payload,
            headers: headers,
            opts: new NatsJSPubOpts { MsgId = JobLifecycle.QueueMessageId(job), RetryAttempts = 30, RetryWaitBetweenAttempts = TimeSpan.FromMilliseconds(500) },
            cancellationToken: ct);
        ack.EnsureStored();

        // Wake the processors idle on this queue's region and model (core NATS, no payload, not
        // awaited by anyone): they need not poll. A stream RePublish would do the same from the
        // server, but nats-server 2.9 refuses to add one to an existing stream.
        await js.Connection.PublishAsync(JobQueues.QueuedSubject(queue), cancellationToken: ct);
        return (ack.Duplicate, payload.Length);
    }
}
