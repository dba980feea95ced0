using CqrsInference.Commands.Jobs;
using Marten;

namespace CqrsInference.Projections.JobStatus;

/// <summary>The job-status read model's answer to "was this Idempotency-Key used before, and with which request?"</summary>
internal sealed class JobStatusIdempotency(IDocumentStore store) : IIdempotencyRecords
{
    public async Task<IReadOnlyDictionary<Guid, string>> FindDigestsAsync(IReadOnlyList<Guid> jobIds, string tenant, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        var recorded = await session.LoadManyAsync<JobStatus>(ct, jobIds);
        return recorded.Where(s => s.Tenant == tenant && s.RequestDigest is not null).ToDictionary(s => s.Id, s => s.RequestDigest!);
    }
}
