using System.Diagnostics;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;

namespace CqrsInference.Processors.Worker.Fetching;

/// <summary>How a delivered job is settled with its queue.</summary>
internal interface IDeliveryAck
{
    /// <summary>Done: the job leaves the queue (only after its result is stored on the log).</summary>
    Task AckAsync();

    /// <summary>Hand the job back, to be delivered again after <paramref name="after"/>.</summary>
    Task RetryAsync(TimeSpan after);

    /// <summary>The job can never run: it leaves the queue without another delivery.</summary>
    Task TerminateAsync();

    /// <summary>Still working on it: the queue's ack wait starts again.</summary>
    Task ProgressAsync(CancellationToken ct);
}

/// <summary>
/// A job message as a processor holds it: the queue it came from (null for a message whose subject
/// names no queue), its body, the trace it continues, its place in the stream, which delivery this
/// is (1 = first) and how to settle it.
/// </summary>
internal sealed record JobDelivery(JobQueue? Queue, string Subject, byte[]? Data, ActivityContext Trace, ulong Sequence, int Attempt, IDeliveryAck Ack)
{
    /// <summary>The job, when whoever made the delivery has decoded it already (the interactive path does, to route it): not decoded again.</summary>
    public JobCommand? Decoded { get; init; }

    /// <summary>Whether a caller waits on this job (the interactive path) rather than a queue.</summary>
    public bool IsInteractive => Ack is InteractiveReply;

    /// <summary>Whether the job is another region's (taken by overflow).</summary>
    public bool IsRemote(string homeRegion) => Queue is { } queue && queue.Region != homeRegion;
}
