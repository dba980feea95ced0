namespace CqrsInference.Commands.Jobs;

/// <summary>
/// Version 1 of a batch's events (<c>POST /v1/batches</c>): the batch is an aggregate of its own, one
/// Marten stream per batch, beside the streams of its jobs (each job's <see cref="JobSubmitted"/> names
/// its batch and line, <see cref="BatchLine"/>). The API appends them in Marten directly
/// (docs/ARCHITECTURE.md, "Decision: batches").
/// </summary>
public static partial class V1
{
    /// <summary>
    /// A batch file was accepted: <paramref name="Lines"/> lines, of which <paramref name="Accepted"/>
    /// became jobs (job id <see cref="Batches.BatchJobs.JobId"/> of the batch and line) and
    /// <paramref name="Refused"/> failed validation. Every line's job carries <paramref name="Deadline"/>.
    /// </summary>
    public sealed record BatchSubmitted(
        Guid BatchId,
        string Tenant,
        DateTimeOffset SubmittedAt,
        int Lines,
        IReadOnlyList<int> Accepted,
        IReadOnlyList<Batches.RefusedLine> Refused,
        DateTimeOffset? Deadline,
        string? Webhook,
        string Priority,
        string RequestDigest,
        string SubmittedBy);

    /// <summary>Terminal: cancelled; its jobs still queued were cancelled, the running ones finish.</summary>
    public sealed record BatchCancelled(Guid BatchId, DateTimeOffset CancelledAt, string CancelledBy);

    /// <summary>Terminal: the deadline passed before every line ended; what had finished is kept, the rest is <c>batch_expired</c>.</summary>
    public sealed record BatchExpired(Guid BatchId, DateTimeOffset Deadline, DateTimeOffset ExpiredAt, int Unfinished);

    /// <summary>Terminal: every accepted line's job has ended.</summary>
    public sealed record BatchCompleted(Guid BatchId, DateTimeOffset CompletedAt);
}
