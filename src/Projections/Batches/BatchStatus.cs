using CqrsInference.Commands.Batches;
using CqrsInference.Commands.Jobs;
using Marten.Events.Aggregation;

namespace CqrsInference.Projections.Batches;

/// <summary>
/// A batch as its own events leave it: the read model behind <c>GET /v1/batches/{id}</c> (the counts per
/// status come from its jobs' <see cref="JobStatus.JobStatus"/> documents, by their <see cref="BatchLine"/>).
/// </summary>
public sealed record BatchStatus(
    Guid Id,
    string Tenant,
    string Status,
    DateTimeOffset SubmittedAt,
    int Lines,
    int Accepted,
    IReadOnlyList<RefusedLine> Refused,
    DateTimeOffset? Deadline,
    string? Webhook,
    string Priority,
    string RequestDigest,
    string SubmittedBy,
    DateTimeOffset? EndedAt = null,
    string? EndedBy = null);

/// <summary>
/// Keeps <see cref="BatchStatus"/> in the transaction of the batch's events (inline). A batch ends once:
/// after completed, cancelled or expired, a later ending leaves it as it is.
/// </summary>
public sealed class BatchStatusProjection : SingleStreamProjection<BatchStatus, Guid>
{
    public static BatchStatus Create(V1.BatchSubmitted e) =>
        new(e.BatchId, e.Tenant, BatchStatuses.Running, e.SubmittedAt, e.Lines, e.Accepted.Count, e.Refused, e.Deadline, e.Webhook,
            e.Priority, e.RequestDigest, e.SubmittedBy);

    public static BatchStatus Apply(V1.BatchCancelled e, BatchStatus current) =>
        End(current, BatchStatuses.Cancelled, e.CancelledAt, e.CancelledBy);

    public static BatchStatus Apply(V1.BatchExpired e, BatchStatus current) =>
        End(current, BatchStatuses.Expired, e.ExpiredAt, "deadline");

    public static BatchStatus Apply(V1.BatchCompleted e, BatchStatus current) =>
        End(current, BatchStatuses.Completed, e.CompletedAt, null);

    private static BatchStatus End(BatchStatus current, string status, DateTimeOffset at, string? by) =>
        current.Status != BatchStatuses.Running ? current : current with { Status = status, EndedAt = at, EndedBy = by };
}
