using System.ComponentModel.DataAnnotations;
using CqrsInference.Api.Http;
using CqrsInference.Api.Jobs.Submitting;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Retrying;
using Marten;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Jobs.Retrying;

/// <summary>The <c>Retry</c> settings: how often a job may be retried.</summary>
public sealed class RetryOptions
{
    /// <summary>Retries one job may have (attempt series 2 … MaxRetries + 1); one more is refused with 409.</summary>
    [Range(0, 100)]
    public int MaxRetries { get; set; } = 3;
}

/// <summary>
/// <c>POST /v1/jobs/{id}:retry</c>: queues a job that ended failed (dead-lettered or not), expired or
/// cancelled again, as its next attempt series in the same job stream. The job must be the caller's
/// tenant's (404 otherwise); a queued, running or succeeded job answers 409, as does a job retried
/// <see cref="RetryOptions.MaxRetries"/> times already; a job whose stored input is gone answers 410.
/// A repeated request with the same Idempotency-Key answers the series it began, and two requests
/// that race begin one series.
/// </summary>
internal static class RetryEndpoint
{
    public static async Task<Results<Accepted<JobView>, ProblemHttpResult>> RetryAsync(
        Guid id, HttpRequest request, ApiCaller caller, IQuerySession session, JobReader jobs, ISender sender, RetryOptions options, TimeProvider clock, CancellationToken ct)
    {
        var (idempotencyKey, badKey) = IdempotencyKeyHeader.Read(request);
        if (badKey is not null)
        {
            return badKey;
        }

        var status = await jobs.FindAsync(session, id, caller, ct);
        if (status is null)
        {
            return Problems.JobNotFound(id);
        }

        if (status.ArchivedAt is not null)
        {
            return Problems.RetryInputGone(id, "the job was archived (Retention:FinishedJobsAfter)");
        }

        var now = clock.GetUtcNow();
        var command = new RetryInferenceJob(id, status.Status, status.CurrentSeries(), status.RetryKey, caller.KeyId, idempotencyKey, options.MaxRetries, now);
        return await sender.Send(command, ct) switch
        {
            RetryOutcome.Retried { Repeated: true } retried when retried.Series == status.CurrentSeries() => Accepted(status),
            RetryOutcome.Retried retried => Accepted(jobs.Retried(status, new(id, retried.Series, status.Tenant, status.Model, status.Region, status.Priority, now,
                caller.KeyId, idempotencyKey is null ? null : RetryDecision.KeyDigest(idempotencyKey)))),
            RetryOutcome.NotRetryable refused => Problems.CannotRetry(id, refused.Status),
            RetryOutcome.LimitReached limit => Problems.RetryLimitReached(id, limit.MaxRetries),
            RetryOutcome.InputGone gone => Problems.RetryInputGone(id, gone.Reason),
            var other => throw new InvalidOperationException($"Unknown retry outcome {other}."),
        };
    }

    private static Accepted<JobView> Accepted(Projections.JobStatus.JobStatus status) =>
        TypedResults.Accepted($"/v1/jobs/{status.Id}", JobView.From(status));
}
