using CqrsInference.Api.Jobs;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Messaging;
using CqrsInference.Projections.JobStatus;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Inference;

/// <summary>
/// How an inference request answers once its job was submitted, or refused. The rule for a job that
/// did not succeed: no input of any caller reaches a 5xx unless the server is at fault.
/// <list type="bullet">
/// <item>refused by the command: as on /v1 (unknown model 404, a tensor the model does not take 400
/// here, Idempotency-Key reused 409, rate or quota 429, queue full 503, with Retry-After);</item>
/// <item>still queued or running when the wait is over: 503 with Retry-After, the job id in the
/// message and <c>Location: /v1/jobs/{id}</c>, where its result will be (the protocol has no 202;
/// a retry with the same Idempotency-Key answers the same job);</item>
/// <item>failed on its input (the model rejected it, its output was not finite, its stored input
/// is gone: failed without retries): 422 with the job's error code and message;</item>
/// <item>failed because the server gave up on it (dead-lettered after its retries): 503 with
/// Retry-After; its run outlasted its execution timeout: 504; it expired before it ran (its
/// deadline): 504; it was cancelled meanwhile (DELETE /v1/jobs/{id}): 409.</item>
/// </list>
/// </summary>
internal static class InferAnswers
{
    /// <summary>How long a caller whose job is still running should wait before asking again.</summary>
    public static readonly TimeSpan StillRunningRetryAfter = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan ServerRetryAfter = TimeSpan.FromSeconds(5);

    public static V2ErrorResult Refused(SubmitOutcome outcome) => outcome switch
    {
        SubmitOutcome.UnknownModel unknown => V2Errors.NotFound($"Model '{unknown.Model}' is not served here; GET /v1/models lists the models."),
        SubmitOutcome.VersionNotServed version => V2Errors.NotFound(version.Refusal.Detail),
        SubmitOutcome.Rejected rejected => V2Errors.BadRequest(V2Errors.Describe(rejected.Errors)),
        SubmitOutcome.IdempotencyConflict conflict => new(StatusCodes.Status409Conflict,
            $"This Idempotency-Key already submitted job {conflict.ExistingJobId} with a different body."),
        SubmitOutcome.QuotaExhausted quota => new(StatusCodes.Status429TooManyRequests,
            $"This tenant has submitted its {quota.Limit} jobs for today (UTC); the quota resets at midnight UTC.", quota.RetryAfter),
        SubmitOutcome.RateLimited limited => new(StatusCodes.Status429TooManyRequests,
            $"This tenant's submit rate is over its limit; retry after {Math.Max(1, Math.Ceiling(limited.RetryAfter.TotalSeconds))} s.", limited.RetryAfter),
        SubmitOutcome.QueueFull full => new(StatusCodes.Status503ServiceUnavailable,
            full.Detail, ServerRetryAfter),
        _ => throw new ArgumentOutOfRangeException(nameof(outcome), outcome, "Not a refusal."),
    };

    /// <summary>The answer for the job as it stood when the wait ended.</summary>
    public static async Task<Results<Ok<V2InferResponse>, V2ErrorResult>> OfAsync(
        JobStatus job, InferRequest request, string? servedBy, TimeSpan waited, ClaimCheck claimCheck, CancellationToken ct)
    {
        if (job.Status == JobStatuses.Succeeded)
        {
            return await SucceededAsync(job, request, servedBy, claimCheck, ct);
        }

        return job.Status switch
        {
            JobStatuses.Failed when job.Error is { DeadLettered: true } error => new V2ErrorResult(StatusCodes.Status503ServiceUnavailable,
                $"Job {job.Id} failed: the server gave up on it ({error.Code}: {error.Message}).", ServerRetryAfter),
            JobStatuses.Failed when job.Error is { Code: JobErrorCodes.ExecutionTimeout } error => new V2ErrorResult(StatusCodes.Status504GatewayTimeout,
                $"Job {job.Id} failed: {error.Code}: {error.Message}"),
            JobStatuses.Failed => new V2ErrorResult(StatusCodes.Status422UnprocessableEntity,
                $"Job {job.Id} failed on its input: {job.Error?.Code}: {job.Error?.Message}"),
            JobStatuses.Expired => new V2ErrorResult(StatusCodes.Status504GatewayTimeout,
                $"Job {job.Id} expired: its deadline passed before a processor could run it."),
            JobStatuses.Cancelled => new V2ErrorResult(StatusCodes.Status409Conflict, $"Job {job.Id} was cancelled before it ran."),
            _ => new V2ErrorResult(StatusCodes.Status503ServiceUnavailable,
                $"Job {job.Id} is still {job.Status} after {waited.TotalSeconds:0.###} s; its result will be at GET /v1/jobs/{job.Id}"
                + (request.IdempotencyKey is null ? "." : " (or retry with the same Idempotency-Key)."), StillRunningRetryAfter, $"/v1/jobs/{job.Id}"),
        };
    }

    private static async Task<Results<Ok<V2InferResponse>, V2ErrorResult>> SucceededAsync(
        JobStatus job, InferRequest request, string? servedBy, ClaimCheck claimCheck, CancellationToken ct)
    {
        var view = await JobView.WithOutputsAsync(job, claimCheck, ct);
        if (view.Outputs is not { } outputs)
        {
            // Only when outputs outlive the object store's retention: a replayed, long finished job.
            return new V2ErrorResult(StatusCodes.Status410Gone, $"Job {job.Id} succeeded, but its outputs are no longer kept (ClaimCheck:MaxAge).");
        }

        var returned = request.Outputs is { } wanted ? outputs.Where(o => wanted.Contains(o.Name)).ToList() : outputs;
        return TypedResults.Ok(new V2InferResponse(job.Model, job.ModelVersion,
            new V2ResponseParameters(job.Id, servedBy, job.RanInRegion), returned, request.Id));
    }
}
