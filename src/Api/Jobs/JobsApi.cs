using System.Text.Json;
using CqrsInference.Api.Http;
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

        jobs.MapPost("", Submitting.SubmitEndpoint.SubmitAsync)
            .WithName("SubmitJob")
            .WithSummary("Submit an inference job")
            .WithDescription("Validates the inputs against the model, makes the job durable in the model's JetStream work queue and answers 202 with its id. "
                + "The Idempotency-Key header makes a retried submit return the same job. With ?wait=5s (at most 60 s) the answer waits for the job: "
                + "200 with the finished job if it ends in time, else 202 as usual.")
            .Accepts<JsonElement>("application/json")
            .WithBodyLimit(Submitting.SubmitRequestReader.MaxBodyBytes)
            .RequirePolicy(ApiPolicies.Submit);

        app.MapPost("/v1/jobs:bulk", Submitting.BulkSubmitEndpoint.SubmitAsync)
            .WithTags("Jobs")
            .WithName("SubmitJobs")
            .WithSummary("Submit many inference jobs together")
            .WithDescription($"Body {{\"jobs\": [ <job>, … ]}} with 1 to {Submitting.BulkSubmitEndpoint.MaxJobs} jobs, each as for POST /v1/jobs. "
                + "Accepted (202, every job with its own id, in order) or refused (422 naming every fault as jobs[i].…) together; "
                + "the same limits apply per job. With an Idempotency-Key a retry returns the same jobs.")
            .Accepts<JsonElement>("application/json")
            .WithBodyLimit(Submitting.SubmitRequestReader.MaxBodyBytes)
            .RequirePolicy(ApiPolicies.Submit);

        jobs.MapGet("", JobList.ListAsync)
            .WithName("ListJobs")
            .WithSummary("The tenant's jobs, newest first, in pages: {\"jobs\": [...], \"nextCursor\"} (?status=, ?model=, ?limit= up to 1000, default 50, ?after=<nextCursor>)")
            .RequirePolicy(ApiPolicies.Read);

        jobs.MapGet("/{id:guid}", GetAsync)
            .WithName("GetJob")
            .WithSummary("The job's status, timings and outputs; with ?version=n or ?asOf=<timestamp>, the job as it stood then")
            .RequirePolicy(ApiPolicies.Read);

        jobs.MapDelete("/{id:guid}", CancelAsync)
            .WithName("CancelJob")
            .WithSummary("Cancel a queued job: it will never run")
            .WithDescription("200 with the job (status cancelled) if it was still queued; 409 if it is running or finished.")
            .RequirePolicy(ApiPolicies.Submit);

        jobs.MapPost("/{id:guid}:cancel", CancelAsync)
            .WithName("CancelJobPost")
            .WithSummary("Cancel a queued job (the same as DELETE /v1/jobs/{id})")
            .RequirePolicy(ApiPolicies.Submit);

        jobs.MapGet("/{id:guid}/stream", JobStreamEndpoint.StreamAsync)
            .WithName("StreamJob")
            .WithSummary("Server-Sent Events: the job's status now, then each lifecycle event as it is stored, until the job ends; each with an id, resumed after Last-Event-ID")
            .RequirePolicy(ApiPolicies.Read);

        jobs.MapGet("/{id:guid}/events", GetEventsAsync)
            .WithName("GetJobEvents")
            .WithSummary("The job's recorded events, in order")
            .RequirePolicy(ApiPolicies.Read);

        return app;
    }

    public static async Task<Results<Ok<JobView>, ProblemHttpResult>> GetAsync(
        Guid id, ApiCaller caller, IQuerySession session, JobReader jobs, ClaimCheck claimCheck, string? asOf, string? version, CancellationToken ct)
    {
        var status = await jobs.FindAsync(session, id, caller.Tenant, ct);
        if (status is null)
        {
            return Problems.JobNotFound(id);
        }

        if (asOf is null && version is null)
        {
            return TypedResults.Ok(await JobView.WithOutputsAsync(status, claimCheck, ct));
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

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        var then = await session.Events.AggregateStreamAsync<JobStatus>(id, version: upTo, timestamp: moment, token: ct);
        return then is null
            ? TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Job not found then", detail: $"Job {id} had no recorded events by {asOf ?? $"version {version}"}.")
            : TypedResults.Ok(await JobView.WithOutputsAsync(then, claimCheck, ct));
    }

    public static async Task<Results<Ok<List<JobEventView>>, ProblemHttpResult>> GetEventsAsync(
        Guid id, ApiCaller caller, IQuerySession session, JobReader jobs, CancellationToken ct)
    {
        var status = await jobs.FindAsync(session, id, caller.Tenant, ct);
        if (status is null)
        {
            return Problems.JobNotFound(id);
        }

        if (status.ArchivedAt is { } archivedAt)
        {
            return Archived(id, archivedAt);
        }

        var events = await session.Events.FetchStreamAsync(id, token: ct);
        return TypedResults.Ok(events
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

    public static async Task<Results<Ok<JobView>, ProblemHttpResult>> CancelAsync(
        Guid id, ApiCaller caller, IQuerySession session, JobReader jobs, ISender sender, TimeProvider clock, CancellationToken ct)
    {
        var status = await jobs.FindAsync(session, id, caller.Tenant, ct);
        if (status is null)
        {
            return Problems.JobNotFound(id);
        }

        var outcome = await sender.Send(new CancelInferenceJob(id, new JobRoute(status.Region, status.Model), status.Status, caller.KeyId, clock.GetUtcNow()), ct);
        return outcome switch
        {
            CancelOutcome.NotCancellable refused => Problems.CannotCancel(id, refused.Status),
            _ => TypedResults.Ok(JobView.From(status with { Status = JobStatuses.Cancelled })),
        };
    }
}
