using CqrsInference.Api.Http;
using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Cancelling;
using CqrsInference.Messaging;
using CqrsInference.Projections.JobStatus;
using Marten;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Jobs;

internal static class JobsApi
{
    public static IEndpointRouteBuilder MapJobsApi(this IEndpointRouteBuilder app)
    {
        var jobs = app.MapGroup("/v1/jobs").WithTags("Jobs");

        Submitting.SubmitRoutes.MapSubmits(app, jobs);

        jobs.MapGet("", JobList.ListAsync)
            .WithStoreDeadline()
            .WithName("ListJobs")
            .WithSummary("The tenant's jobs, newest first, in pages: {\"jobs\": [...], \"nextCursor\"} (?status=, ?model=, ?limit= up to 1000, default 50, ?after=<nextCursor>; ?tenant= another tenant's, for the operator role only)")
            .WithProblems(Invalid, (StatusCodes.Status403Forbidden, "?tenant= names another tenant and the key lacks the operator role."))
            .RequirePolicy(ApiPolicies.Read);

        jobs.MapGet("/{id:guid}", GetAsync)
            .WithName("GetJob")
            .WithSummary("The job's status, timings and outputs; with ?version=n or ?asOf=<timestamp>, the job as it stood then")
            .WithDescription("A queued job (asked without ?version or ?asOf) also says why it waits ('waiting'): its estimated position in its queue, "
                + "the queue's size and rate, whether any online processor serves its model and region, and an estimated start.")
            .WithProblems(NoSuchJob, Gone, Invalid)
            .RequirePolicy(ApiPolicies.Read);

        jobs.MapDelete("/{id:guid}", CancelAsync)
            .WithName("CancelJob")
            .WithSummary("Cancel a job: a queued one never runs, a running one's run is aborted")
            .WithDescription("200 with the job (status cancelled) if it was still queued; 202 with the job (status cancelled) if a processor held it: "
                + "the cancel is its ending and the processor aborts the run within a second; 409 if it has ended.")
            .WithProblems(NoSuchJob, NotCancellable)
            .RequirePolicy(ApiPolicies.Submit);

        jobs.MapPost("/{id:guid}:cancel", CancelAsync)
            .WithName("CancelJobPost")
            .WithSummary("Cancel a job (the same as DELETE /v1/jobs/{id})")
            .WithProblems(NoSuchJob, NotCancellable)
            .RequirePolicy(ApiPolicies.Submit);

        jobs.MapPost("/{id:guid}:retry", Retrying.RetryEndpoint.RetryAsync)
            .WithName("RetryJob")
            .WithSummary("Retry a failed (or dead-lettered), expired or cancelled job: its next attempt series, in the same job")
            .WithDescription("202 with the job, queued again, its series one more; the same Idempotency-Key answers the same series again. "
                + "409 if it is queued, running or succeeded, or was retried Retry:MaxRetries times; 410 if its stored input is gone.")
            .WithProblems(NoSuchJob, NotRetryable, InputGone, Invalid)
            .RequirePolicy(ApiPolicies.Submit);

        jobs.MapGet("/{id:guid}/stream", JobStreamEndpoint.StreamAsync)
            .WithName("StreamJob")
            .WithSummary("Server-Sent Events: the job's status now, then each lifecycle event as it is stored, until the job ends; each with an id, resumed after Last-Event-ID")
            .ProducesText(StatusCodes.Status200OK, ApiContract.EventStream,
                "Server-Sent Events, each with an id: 'status' with the job (as GET /v1/jobs/{id}), then each lifecycle event by its type and the status it leads to; 'ping' while idle.")
            .WithProblems(NoSuchJob, (StatusCodes.Status422UnprocessableEntity, "Last-Event-ID is not the id of an event this stream sent."),
                (StatusCodes.Status429TooManyRequests, "The tenant holds Api:Streams:PerTenant streams open on this instance."))
            .RequirePolicy(ApiPolicies.Read);

        jobs.MapGet("/{id:guid}/events", GetEventsAsync)
            .WithName("GetJobEvents")
            .WithSummary("The job's recorded events, in order")
            .WithProblems(NoSuchJob, Gone)
            .RequirePolicy(ApiPolicies.Read);

        return app;
    }

    private static readonly (int, string) NoSuchJob = (StatusCodes.Status404NotFound, "There is no such job (another tenant's job is not disclosed).");
    private static readonly (int, string) Gone = (StatusCodes.Status410Gone, "The job was archived (Retention:FinishedJobsAfter): its summary stays, its history is gone.");
    private static readonly (int, string) NotCancellable = (StatusCodes.Status409Conflict, "The job has ended (its ending came before the cancel).");
    private static readonly (int, string) NotRetryable = (StatusCodes.Status409Conflict, "The job is queued, running or succeeded, or reached Retry:MaxRetries.");
    private static readonly (int, string) InputGone = (StatusCodes.Status410Gone, "The job's stored input is gone (the log's or the object store's retention, or the job was archived).");
    private static readonly (int, string) Invalid = (StatusCodes.Status422UnprocessableEntity, "A parameter is out of its range (or not a cursor this list gave); 'errors' names each.");

    /// <summary>
    /// Why a queued job waits, or null while PostgreSQL is away or does not answer within
    /// <see cref="JobReader.MemoryAnswersAfter"/> (the estimate reads the processors from it): a job
    /// just accepted still reads from the API's memory then, without the estimate.
    /// </summary>
    private static async Task<Waiting.JobWaiting?> WaitingAsync(Waiting.QueueWaits waits, JobStatus status, IQuerySession session, CancellationToken ct) =>
        (await Projections.Outages.AskWithinAsync(
            t => waits.OfAsync(new JobQueue(status.Region, status.Model, status.Priority, status.Tenant), status.Id, status.SubmittedAt, session, t),
            JobReader.MemoryAnswersAfter, ct)).Value;

    public static async Task<Results<Ok<JobView>, ProblemHttpResult>> GetAsync(
        Guid id, ApiCaller caller, IQuerySession session, JobReader jobs, ClaimCheck claimCheck, Waiting.QueueWaits waits,
        Projections.Pricing.PriceHistory prices, string? asOf, string? version, CancellationToken ct)
    {
        var status = await jobs.FindAsync(session, id, caller, ct);
        if (status is null)
        {
            return Problems.JobNotFound(id);
        }

        if (asOf is null && version is null)
        {
            var view = await JobView.WithOutputsAsync(status, claimCheck, ct) with { Cost = await CostAsync(status, prices, ct) };
            return TypedResults.Ok(status.Status == JobStatuses.Queued
                ? view with { Waiting = await WaitingAsync(waits, status, session, ct) }
                : view);
        }

        if (status.ArchivedAt is { } archivedAt)
        {
            return Archived(id, archivedAt);
        }

        // Time travel: fold the job's events up to a version or a moment, with the same projection.
        var errors = new Dictionary<string, string[]>();
        DateTimeOffset? moment = null;
        if (asOf is not null)
        {
            if (Timestamps.TryParseUtc(asOf, out var parsed))
            {
                moment = parsed;
            }
            else
            {
                errors["asOf"] = [$"asOf must be {Timestamps.Rule}."];
            }
        }

        long upTo = 0;
        if (version is not null && (!long.TryParse(version, out upTo) || upTo < 1))
        {
            errors["version"] = ["version must be a whole number of at least 1."];
        }

        if (asOf is not null && version is not null)
        {
            errors["asOf"] = ["Give asOf or version, not both: each names a point in the job's history on its own."];
        }

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        var then = await session.Events.AggregateStreamAsync<JobStatus>(id, version: upTo, timestamp: moment, token: ct);
        return then is null
            ? TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Job not found then", detail: $"Job {id} had no recorded events by {asOf ?? $"version {version}"}.")
            : TypedResults.Ok(await JobView.WithOutputsAsync(then, claimCheck, ct) with { Cost = await CostAsync(then, prices, ct) });
    }

    /// <summary>The job's cost; none while PostgreSQL is away or does not answer within <see cref="JobReader.MemoryAnswersAfter"/> (a job just accepted reads from the API's memory then, and has not run).</summary>
    private static async Task<Projections.Pricing.JobCost?> CostAsync(JobStatus status, Projections.Pricing.PriceHistory prices, CancellationToken ct) =>
        status.Runs is null
            ? Projections.Pricing.JobCost.Of(null, [])
            : (await Projections.Outages.AskWithinAsync(async t => Projections.Pricing.JobCost.Of(status.Runs, await prices.LoadAsync(t)), JobReader.MemoryAnswersAfter, ct)).Value;

    public static async Task<Results<Ok<List<JobEventView>>, ProblemHttpResult>> GetEventsAsync(
        Guid id, ApiCaller caller, IQuerySession session, JobReader jobs, CancellationToken ct)
    {
        var status = await jobs.FindAsync(session, id, caller, ct);
        if (status is null)
        {
            return Problems.JobNotFound(id);
        }

        if (status.ArchivedAt is { } archivedAt)
        {
            return Archived(id, archivedAt);
        }

        // Shadow runs' results are the platform operator's (GET /v1/analytics/shadow), never the caller's answer.
        var events = await session.Events.FetchStreamAsync(id, token: ct);
        return TypedResults.Ok(events
            .Where(e => caller.IsOperator || !JobLifecycle.IsShadow(e.Data))
            .Select(e => new JobEventView(e.Id, e.EventTypeName, e.Sequence, e.Version, e.Timestamp, e.Data))
            .ToList());
    }

    /// <summary>410 for what an archived job no longer answers (its history, as it stood then); its summary stays readable.</summary>
    private static ProblemHttpResult Archived(Guid id, DateTimeOffset archivedAt) =>
        TypedResults.Problem(
            statusCode: StatusCodes.Status410Gone,
            title: "Job archived",
            detail: $"Job {id} finished longer than Retention:FinishedJobsAfter ago and was archived at {archivedAt.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}: "
                + "GET /v1/jobs/{id} still answers its summary, and its events stay in the audit feed (GET /v1/audit/events).");

    public static async Task<Results<Ok<JobView>, Accepted<JobView>, ProblemHttpResult>> CancelAsync(
        Guid id, ApiCaller caller, IQuerySession session, JobReader jobs, ISender sender, JobQueues queues, TimeProvider clock, CancellationToken ct)
    {
        var status = await jobs.FindAsync(session, id, caller, ct);
        if (status is null)
        {
            return Problems.JobNotFound(id);
        }

        var at = clock.GetUtcNow();
        var outcome = await sender.Send(new CancelInferenceJob(id, new JobRoute(status.Region, status.Model, status.CurrentSeries()), status.Status, caller.KeyId, at), ct);
        if (outcome is CancelOutcome.NotCancellable refused)
        {
            return Problems.CannotCancel(id, refused.Status);
        }

        if (outcome is CancelOutcome.Cancelled { At: null })
        {
            // Seen cancelled already (a client's retry): the job as its cancel left it, not a new ending time.
            return TypedResults.Ok(JobView.From(status));
        }

        // Read as cancelled from now on, here, until recorded: a retry right after the 200 (or a GET)
        // would otherwise find the read model's "queued" and be refused as if the cancel had not been.
        // Its time is the cancel's the log holds: of cancels at once, the first.
        var storedAt = outcome switch
        {
            CancelOutcome.Cancelled { At: { } first } => first,
            CancelOutcome.CancelRequested requested => requested.At,
            _ => at,
        };
        var cancelled = status with { Status = JobStatuses.Cancelled, CompletedAt = storedAt };
        jobs.Ended(cancelled);
        if (outcome is CancelOutcome.Cancelled)
        {
            await queues.WithdrawAsync(new JobQueue(status.Region, status.Model, status.Priority, status.Tenant), id, ct);
        }

        return outcome is CancelOutcome.CancelRequested
            ? TypedResults.Accepted($"/v1/jobs/{id}", JobView.From(cancelled))
            : TypedResults.Ok(JobView.From(cancelled));
    }
}
