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
internal sealed class SubmitServices(ISender sender, IQuerySession session, JobReader jobs, JobEventFeed feed, ClaimCheck claimCheck, JobIntake intake, TimeProvider clock)
{
    public JobIntake Intake => intake;

    public JobReader Jobs => jobs;

    public ISender Sender => sender;

    public IQuerySession Session => session;

    public JobEventFeed Feed => feed;

    public ClaimCheck ClaimCheck => claimCheck;

    public TimeProvider Clock => clock;
}

/// <summary>
/// What became of a submit: the command's outcome and, once accepted, the job as it stands (ended,
/// when the caller waited and it ended in time).
/// </summary>
internal sealed record SubmitAnswer(SubmitOutcome Outcome, JobStatus? Status)
{
    /// <summary>
    /// Which path served an accepted job: <see cref="JobView.Interactive"/> or <see cref="JobView.Queue"/>;
    /// null for a retried submit answered from the record (which does not say).
    /// </summary>
    public string? ServedBy => Outcome switch
    {
        SubmitOutcome.Accepted { Replayed: true } => null,
        SubmitOutcome.Accepted { ServedIn: not null } => JobView.Interactive,
        SubmitOutcome.Accepted => JobView.Queue,
        _ => null,
    };
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
        Http.ApiExceptionHandler.Submitting(request.HttpContext, command.JobId);
        var answer = await RunAsync(command, submit.WaitFor, services, ct);
        if (answer.Status is not { } status)
        {
            return SubmitProblems.Of(request.HttpContext, answer.Outcome);
        }

        // 200 with the finished job when the caller waited and it ended in time; else 202 with the job as it stands.
        return JobLifecycle.IsTerminal(status.Status) && submit.WaitFor is not null
            ? TypedResults.Ok(await JobView.WithOutputsAsync(status, services.ClaimCheck, ct) with { ServedBy = answer.ServedBy })
            : TypedResults.Accepted($"/v1/jobs/{status.Id}", JobView.From(status) with { ServedBy = answer.ServedBy });
    }

    /// <summary>
    /// Sends the submit command and, with <paramref name="wait"/>, follows the accepted job until it
    /// ends or the wait is over (counted from now: an interactive run inside the command counts).
    /// The v1 and the Open Inference Protocol endpoints both submit through here.
    /// </summary>
    public static async Task<SubmitAnswer> RunAsync(SubmitInferenceJob command, TimeSpan? wait, SubmitServices services, CancellationToken ct)
    {
        var started = services.Clock.GetTimestamp();

        // A caller that waits listens before the job is submitted, so no event of it can be missed.
        using var follow = wait is not { } waitFor ? null : await services.Feed.StartAsync(command.JobId, waitFor, ct);
        var outcome = await services.Sender.Send(command, ct);
        if (outcome is not SubmitOutcome.Accepted accepted)
        {
            return new SubmitAnswer(outcome, null);
        }

        var job = accepted.Job;
        // A retried submit answers with the job as it stands, or, while PostgreSQL does not answer
        // within 2 s (the caller retries because of an outage, say), as it was accepted.
        var current = accepted.Replayed ? await services.Jobs.FindOrNothingWithinAsync(services.Session, job.JobId, job.Tenant, JobReader.MemoryAnswersAfter, ct) : null;
        var status = current ?? JobStatusProjection.Create(job.ToSubmitted(0));
        if (follow is not null && wait is { } waitLimit && !JobLifecycle.IsTerminal(status.Status))
        {
            var until = started + Ticks(waitLimit, services);
            status = accepted.Taken ? await FollowTakenAsync(job, follow, status, until, services, ct) : status;
            if (!JobLifecycle.IsTerminal(status.Status) && await WaitForEndAsync(follow, status, until, services, ct) is { } finished)
            {
                status = finished;
            }

            if (JobLifecycle.IsTerminal(status.Status))
            {
                services.Jobs.Ended(status);
            }
        }
        else if (accepted.Taken && !JobLifecycle.IsTerminal(status.Status))
        {
            await services.Intake.QueueTakenAsync(job);
        }

        return new SubmitAnswer(outcome, status);
    }

    /// <summary>
    /// Follows a job another interactive run took (<see cref="SubmitOutcome.Accepted.Taken"/>) for as
    /// long as a processor has to answer (<c>Submit:InteractiveAnswerWithin</c>), then queues it unless
    /// it ended: that run's processor may have died, and nothing else would queue it (a run slower
    /// than that runs twice, as when the first caller's wait for its answer ends). A caller that
    /// leaves meanwhile leaves it queued too.
    /// </summary>
    private static async Task<JobStatus> FollowTakenAsync(JobCommand job, JobEventFeed.Follow follow, JobStatus status, long until, SubmitServices services, CancellationToken ct)
    {
        var queueAt = Math.Min(until, services.Clock.GetTimestamp() + Ticks(services.Intake.AnswerWithin, services));
        try
        {
            status = await WaitForEndAsync(follow, status, queueAt, services, ct) ?? status;
        }
        finally
        {
            if (!JobLifecycle.IsTerminal(status.Status))
            {
                await services.Intake.QueueTakenAsync(job);
            }
        }

        return status;
    }

    private static long Ticks(TimeSpan span, SubmitServices services) => (long)(span.TotalSeconds * services.Clock.TimestampFrequency);

    /// <summary>
    /// Follows the job's stored events until it ends or <paramref name="until"/> (a timestamp). A job
    /// whose ending was stored before this caller followed it (a retried submit of a job that ran
    /// already, whose second ending the log dropped as a duplicate) is found in the store instead:
    /// looked up after a second of silence, then every quarter of a second.
    /// </summary>
    private static async Task<JobStatus?> WaitForEndAsync(JobEventFeed.Follow follow, JobStatus status, long until, SubmitServices services, CancellationToken ct)
    {
        var slice = TimeSpan.FromSeconds(1);
        while (TimeSpan.FromSeconds((until - services.Clock.GetTimestamp()) / (double)services.Clock.TimestampFrequency) is var left && left > TimeSpan.Zero)
        {
            status = await JobNotifications.FollowAsync(follow, status, left < slice ? left : slice, ct);
            if (JobLifecycle.IsTerminal(status.Status))
            {
                return status;
            }

            if (await StoredEndingAsync(status, services, ct) is { } stored)
            {
                return stored;
            }

            slice = TimeSpan.FromMilliseconds(250);
        }

        return null;
    }

    private static async Task<JobStatus?> StoredEndingAsync(JobStatus status, SubmitServices services, CancellationToken ct)
    {
        try
        {
            return await services.Jobs.FindAsync(services.Session, status.Id, status.Tenant, ct) is { } found && JobLifecycle.IsTerminal(found.Status) ? found : null;
        }
        catch (Exception e) when (Projections.Outages.IsOutage(e))
        {
            return null; // The store is away: the feed alone, as before.
        }
    }
}

/// <summary>How a refused submit answers.</summary>
internal static class SubmitProblems
{
    public static ProblemHttpResult Of(HttpContext http, SubmitOutcome outcome) => outcome switch
    {
        SubmitOutcome.UnknownModel unknown => Problems.Validation("model", $"Model '{Commands.Shown.Cut(unknown.Model)}' is not served here; GET /v1/models lists the models."),
        SubmitOutcome.VersionNotServed version => Problems.Validation("modelVersion", version.Refusal.Detail),
        SubmitOutcome.Rejected rejected => Problems.Validation(rejected.Errors.ToDictionary()),
        SubmitOutcome.IdempotencyConflict conflict => Problems.IdempotencyConflict(conflict.ExistingJobId),
        SubmitOutcome.QuotaExhausted quota => Problems.TooManyRequests(http, "Quota exhausted",
            $"This tenant has submitted its {quota.Limit} jobs for today (UTC); the quota resets at midnight UTC.", quota.RetryAfter),
        SubmitOutcome.RateLimited limited => Problems.TooManyRequests(http, "Too many requests",
            $"This tenant's submit rate is over its limit; retry after {Math.Max(1, Math.Ceiling(limited.RetryAfter.TotalSeconds))} s.", limited.RetryAfter),
        SubmitOutcome.QueueFull full => Problems.Unavailable(http, "Queue full",
            full.Detail, TimeSpan.FromSeconds(5)),
        _ => throw new ArgumentOutOfRangeException(nameof(outcome), outcome, "Not a refusal."),
    };
}
