using CqrsInference.Api.Http;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Messaging;
using CqrsInference.Projections.JobStatus;
using Marten;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Jobs.Submitting;

/// <summary>What the submit endpoint uses besides the request and the caller.</summary>
internal sealed class SubmitServices(ISender sender, IQuerySession session, JobReader jobs, JobEventFeed feed, ClaimCheck claimCheck, TimeProvider clock)
{
    public JobReader Jobs => jobs;

    public ISender Sender => sender;

    public IQuerySession Session => session;

    public JobEventFeed Feed => feed;

    public ClaimCheck ClaimCheck => claimCheck;

    public TimeProvider Clock => clock;
}

/// <summary><c>POST /v1/jobs</c>: read the request, send the command, answer.</summary>
internal static class SubmitEndpoint
{
    public static async Task<Results<Accepted<JobView>, Ok<JobView>, ProblemHttpResult>> SubmitAsync(
        HttpRequest request, ApiCaller caller, SubmitServices services, string? wait, CancellationToken ct)
    {
        var (submit, problem) = await SubmitRequestReader.ReadAsync(request, wait, ct);
        if (submit is null)
        {
            return problem!;
        }

        var command = submit.ToCommand(caller, services.Clock.GetUtcNow());

        // A caller that waits listens before the job is submitted, so no event of it can be missed.
        using var follow = submit.Wait is not { } waitFor ? null : await services.Feed.StartAsync(command.JobId, waitFor, ct);
        var outcome = await services.Sender.Send(command, ct);
        return outcome is SubmitOutcome.Accepted accepted
            ? await AcceptedAsync(accepted, follow, submit.Wait, services, ct)
            : SubmitProblems.Of(request.HttpContext, outcome);
    }

    /// <summary>202 with the job as it stands; 200 with the finished job when the caller waited and it ended in time.</summary>
    private static async Task<Results<Accepted<JobView>, Ok<JobView>, ProblemHttpResult>> AcceptedAsync(
        SubmitOutcome.Accepted accepted, JobEventFeed.Follow? follow, TimeSpan? wait, SubmitServices services, CancellationToken ct)
    {
        var job = accepted.Job;
        var current = accepted.Replayed ? await services.Jobs.FindAsync(services.Session, job.JobId, job.Tenant, ct) : null;
        var status = current ?? JobStatusProjection.Create(job.ToSubmitted(0));
        if (follow is not null && wait is { } waitFor && !JobLifecycle.IsTerminal(status.Status)
            && await JobNotifications.WaitForTerminalAsync(follow, status, waitFor, ct) is { } finished)
        {
            status = finished;
        }

        return JobLifecycle.IsTerminal(status.Status) && wait is not null
            ? TypedResults.Ok(await JobView.WithOutputsAsync(status, services.ClaimCheck, ct))
            : TypedResults.Accepted($"/v1/jobs/{job.JobId}", JobView.From(status));
    }
}

/// <summary>How a refused submit answers.</summary>
internal static class SubmitProblems
{
    public static ProblemHttpResult Of(HttpContext http, SubmitOutcome outcome) => outcome switch
    {
        SubmitOutcome.UnknownModel unknown => Problems.Validation("model", $"Model '{unknown.Model}' is not served here; GET /v1/models lists the models."),
        SubmitOutcome.Rejected rejected => Problems.Validation(rejected.Errors.ToDictionary()),
        SubmitOutcome.IdempotencyConflict conflict => Problems.IdempotencyConflict(conflict.ExistingJobId),
        SubmitOutcome.QuotaExhausted quota => Problems.TooManyRequests(http, "Quota exhausted",
            $"This tenant has submitted its {quota.Limit} jobs for today (UTC); the quota resets at midnight UTC.", quota.RetryAfter),
        SubmitOutcome.RateLimited limited => Problems.TooManyRequests(http, "Too many requests",
            $"This tenant's submit rate is over its limit; retry after {Math.Max(1, Math.Ceiling(limited.RetryAfter.TotalSeconds))} s.", limited.RetryAfter),
        SubmitOutcome.QueueFull full => Problems.Unavailable(http, "Queue full",
            $"{full.Depth} jobs wait for model '{full.Model}' (the limit is {full.Limit}); retry later.", TimeSpan.FromSeconds(5)),
        _ => throw new ArgumentOutOfRangeException(nameof(outcome), outcome, "Not a refusal."),
    };
}
