using CqrsInference.Commands.Jobs;
using Marten;

namespace CqrsInference.Projections.JobStatus;

/// <summary>The job-status read model's answer to "was this Idempotency-Key used before, and with which request?"</summary>
internal sealed class JobStatusIdempotency(IDocumentStore store) : IIdempotencyRecords
{
    public async Task<string?> FindDigestAsync(Guid jobId, string tenant, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        var status = await session.LoadAsync<JobStatus>(jobId, ct);
        return status is not null && status.Tenant == tenant ? status.RequestDigest : null;
    }
}
