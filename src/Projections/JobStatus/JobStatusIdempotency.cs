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
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(AnswerWithin);
        try
        {
            await using var session = store.QuerySession();

            // WaitAsync returns at the bound even while the driver's cancellation is still under way.
            var recorded = await session.LoadManyAsync<JobStatus>(bounded.Token, jobIds).WaitAsync(bounded.Token);
            return recorded.Where(s => s.Tenant == tenant && s.RequestDigest is not null).ToDictionary(s => s.Id, s => s.RequestDigest!);
        }
        catch (Exception e) when (!ct.IsCancellationRequested && (Outages.IsOutage(e) || (e is OperationCanceledException && bounded.IsCancellationRequested)))
        {
            LogStoreAway(logger, e is OperationCanceledException ? $"no answer within {AnswerWithin.TotalSeconds:0} s" : e.GetBaseException().Message);
            return new Dictionary<Guid, string>();
        }
    }

    [LoggerMessage(LogLevel.Warning, "Idempotency look-up without the read model (PostgreSQL out of reach): the job is published again and de-duplicated by the queue: {Reason}")]
    private static partial void LogStoreAway(ILogger logger, string reason);
}
