using CqrsInference.Commands.Jobs;
using Marten;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Projections.JobStatus;

/// <summary>
/// The job-status read model's answer to "was this Idempotency-Key used before, and with which
/// request?". While PostgreSQL is out of reach the answer is "not recorded": the key's claim in
/// NATS (<c>cqrsi_idempotency</c>) has already refused another body, and a job published again
/// is dropped by the queue's duplicate window, so a client retrying through an outage (as a 503
/// tells it to) gets its job accepted once.
/// </summary>
internal sealed partial class JobStatusIdempotency(IDocumentStore store, ILogger<JobStatusIdempotency> logger) : IIdempotencyRecords
{
    /// <summary>
    /// How long a submit waits for the read model's answer before it goes on without it, as when
    /// PostgreSQL is out of reach: a PostgreSQL that hangs instead of refusing would otherwise hold
    /// every submit with an Idempotency-Key for the driver's command timeout (30 s by default).
    /// </summary>
    public static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(2);

    public async Task<IReadOnlyDictionary<Guid, string>> FindDigestsAsync(IReadOnlyList<Guid> jobIds, string tenant, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        var recorded = await Outages.AskWithinAsync(async t => await session.LoadManyAsync<JobStatus>(t, jobIds), AnswerWithin, ct);
        if (!recorded.Answered)
        {
            LogStoreAway(logger, recorded.Unanswered!);
            return new Dictionary<Guid, string>();
        }

        return recorded.Value!.Where(s => s.Tenant == tenant && s.RequestDigest is not null).ToDictionary(s => s.Id, s => s.RequestDigest!);
    }

    [LoggerMessage(LogLevel.Warning, "Idempotency look-up without the read model (PostgreSQL out of reach): the job is published again and de-duplicated by the queue: {Reason}")]
    private static partial void LogStoreAway(ILogger logger, string reason);
}
