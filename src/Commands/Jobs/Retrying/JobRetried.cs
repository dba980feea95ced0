namespace CqrsInference.Commands.Jobs;

public static partial class V1
{
    /// <summary>
    /// A job that had ended (failed, dead-lettered, expired or cancelled) was queued again: attempt
    /// series <paramref name="Series"/> (2 for the first retry) begins, asked for by
    /// <paramref name="RetriedBy"/> (an API key id). The recorder reads it from the retry's queue
    /// message (<see cref="JobCommand.ToLogged"/>), so it is in the job's stream just before that
    /// series' events. <paramref name="RetryKey"/>: the digest of the request's Idempotency-Key, if
    /// it had one. <paramref name="Deadline"/>: the series' deadline (the job's own while it is ahead).
    /// </summary>
    public sealed record JobRetried(
        Guid JobId,
        int Series,
        string Tenant,
        string Model,
        string Region,
        string Priority,
        DateTimeOffset RetriedAt,
        string RetriedBy,
        string? RetryKey = null,
        DateTimeOffset? Deadline = null);
}
