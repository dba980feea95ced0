using CqrsInference.Messaging;

namespace CqrsInference.Processors.Worker.Fetching;

/// <summary>Where a worker's jobs come from: its model's queues, their state, pulls and wake-ups.</summary>
internal interface IJobSource
{
    /// <summary>Every queue of the model with its waiting and in-flight counts.</summary>
    Task<IReadOnlyList<QueueState>> ListAsync(string model, CancellationToken ct);

    /// <summary>One queue's waiting and in-flight counts, or null when it has no consumer.</summary>
    Task<QueueState?> StateAsync(JobQueue queue, CancellationToken ct);

    /// <summary>When the oldest job still in the queue was stored, or null when it is empty.</summary>
    Task<DateTimeOffset?> OldestAsync(JobQueue queue, CancellationToken ct);

    /// <summary>Up to <paramref name="count"/> jobs of the queue; with <paramref name="waitAtServer"/>, the pull waits that long for them to arrive.</summary>
    IAsyncEnumerable<JobDelivery> PullAsync(JobQueue queue, int count, TimeSpan? waitAtServer, CancellationToken ct);

    /// <summary>The queues a job was just put on, for the region and model (the API announces each).</summary>
    IAsyncEnumerable<JobQueue> WakeUpsAsync(string region, string model, CancellationToken ct);
}
