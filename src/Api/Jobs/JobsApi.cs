using System.Text.Json;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Projections.JobStatus;
using Marten;
using Mediator;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Messaging;
using Microsoft.AspNetCore.Http.HttpResults;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace CqrsInference.Api.Jobs;

public static class JobsApi
{
    /// <summary>The largest submit body accepted; larger ones get 413.</summary>
    public const int MaxBodyBytes = 8 * 1024 * 1024;

    public static IEndpointRouteBuilder MapJobsApi(this IEndpointRouteBuilder app)
    {
        var jobs = app.MapGroup("/v1/jobs").WithTags("Jobs");

        jobs.MapPost("", SubmitAsync)
            .WithName("SubmitJob")
            .WithSummary("Submit an inference job")
            .WithDescription("Validates the inputs against the model, makes the job durable in the model's JetStream work queue and answers 202 with its id. "
                + "The Idempotency-Key header makes a retried submit return the same job. With ?wait=5s (at most 60 s) the answer waits for the job: "
                + "200 with the finished job if it ends in time, else 202 as usual.")
            .Accepts<JsonElement>("application/json")
            .RequireRole(ApiRoles.Submit)
            .RequireRateLimiting(Hosting.Limits.SubmitPolicy);

        jobs.MapGet("", ListAsync)
            .WithName("ListJobs")
            .WithSummary("The tenant's most recent jobs, newest first (?status=, ?model=, ?limit= up to 1000, default 50)")
            .RequireRole(ApiRoles.Read, ApiRoles.Auditor);

        jobs.MapGet("/{id:guid}", GetAsync)
            .WithName("GetJob")
            .WithSummary("The job's status, timings and outputs; with ?version=n or ?asOf=<timestamp>, the job as it stood then")
            .RequireRole(ApiRoles.Read, ApiRoles.Auditor);

        jobs.MapDelete("/{id:guid}", CancelAsync)
            .WithName("CancelJob")
            .WithSummary("Cancel a queued job: it will never run")
            .WithDescription("200 with the job (status cancelled) if it was still queued; 409 if it is running or finished.")
            .RequireRole(ApiRoles.Submit);

        jobs.MapPost("/{id:guid}:cancel", CancelAsync)
            .WithName("CancelJobPost")
            .WithSummary("Cancel a queued job (the same as DELETE /v1/jobs/{id})")
            .RequireRole(ApiRoles.Submit);

        jobs.MapGet("/{id:guid}/stream", StreamAsync)
            .WithName("StreamJob")
            .WithSummary("Server-Sent Events: the job's status now, then each lifecycle event as it is stored, until the job ends")
            .RequireRole(ApiRoles.Read, ApiRoles.Auditor);

        jobs.MapGet("/{id:guid}/events", GetEventsAsync)
            .WithName("GetJobEvents")
            .WithSummary("The job's recorded events, in order")
            .RequireRole(ApiRoles.Read, ApiRoles.Auditor);

        return app;
    }

    public static async Task<Results<Accepted<JobView>, Ok<JobView>, ProblemHttpResult>> SubmitAsync(
        HttpRequest request,
        ApiCaller caller,
        ISender sender,
        IQuerySession session,
        INatsConnection nats,
        Hosting.QueueDepthGuard queues,
        Hosting.TenantQuota quota,
        Commands.Models.ModelCatalog catalog,
        Projections.Webhooks.WebhookOptions webhooks,
        ClaimCheck claimCheck,
        TimeProvider clock,
        string? wait,
        CancellationToken ct)
    {
        var tenant = caller.Tenant;
        TimeSpan waitFor = default;
        if (wait is not null && !JobNotifications.TryParseWait(wait, out waitFor))
        {
            return Problems.Validation(new() { ["wait"] = [$"wait must be a duration such as 500ms, 5s or 1m, at most {JobNotifications.MaxWaitSeconds} s."] });
        }

        if (!Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            || !string.Equals(mediaType.MediaType.Value, "application/json", StringComparison.OrdinalIgnoreCase))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type",
                detail: $"Send the job as application/json, not '{request.ContentType}'.");
        }

        var body = await ReadBodyAsync(request, ct);
        if (body is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Payload too large",
                detail: $"A submit body may be at most {MaxBodyBytes} bytes; use smaller inputs.");
        }

        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            return Problems.MalformedJson("The body is not valid UTF-8.");
        }

        JobRequest? parsed;
        Dictionary<string, string[]> errors;
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 32, AllowDuplicateProperties = false });
            (parsed, errors) = JobRequestParser.Parse(document.RootElement.Clone());
        }
        catch (JsonException e)
        {
            return Problems.MalformedJson($"The body is not valid JSON: {e.Message}");
        }
        catch (InvalidOperationException e)
        {
            // Escapes such as a lone "\ud800" are valid JSON but no valid string.
            return Problems.MalformedJson($"The body holds a string that is not valid Unicode: {e.Message}");
        }

        if (parsed is null)
        {
            return Problems.Validation(errors);
        }

        if (parsed.Webhook is not null && !webhooks.Enabled)
        {
            return Problems.Validation(new() { ["webhook"] = ["Webhooks are not enabled on this deployment (Webhooks:SigningKey is not set)."] });
        }

        var idempotencyKey = request.Headers["Idempotency-Key"].ToString() is { Length: > 0 } key ? key : null;
        if (idempotencyKey is { Length: > 256 })
        {
            return Problems.Validation(new() { ["Idempotency-Key"] = ["The Idempotency-Key header is at most 256 characters."] });
        }

        if (await quota.ExhaustedAsync(tenant, session, ct) is { } exhausted)
        {
            request.HttpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(exhausted.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Quota exhausted",
                detail: $"This tenant has submitted its {exhausted.Limit} jobs for today (UTC); the quota resets at midnight UTC.");
        }

        if (catalog.TryGet(parsed.Model, out _) && await queues.OverLimitAsync(parsed.Model, ct) is { } depth)
        {
            request.HttpContext.Response.Headers.RetryAfter = "5";
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Queue full",
                detail: $"{depth} jobs wait for model '{parsed.Model}' (the limit is {queues.MaxDepth}); retry later.");
        }

        var now = clock.GetUtcNow();
        var jobId = JobIds.For(tenant, idempotencyKey, now);

        // Synchronous mode listens before submitting, so no event of the job can be missed.
        await using var notifications = wait is null ? null : await JobNotifications.SubscribeAsync(nats, jobId, ct);
        var outcome = await sender.Send(
            new SubmitInferenceJob(jobId, tenant, parsed.Model, parsed.Region, parsed.Priority, parsed.Inputs, parsed.Metadata,
                idempotencyKey, RequestDigest.Of(body), now, parsed.Webhook, parsed.Deadline),
            ct);

        switch (outcome)
        {
            case SubmitOutcome.Accepted accepted:
                var job = accepted.Job;
                var current = accepted.Replayed ? await session.LoadAsync<JobStatus>(job.JobId, ct) : null;
                var status = current ?? JobStatusProjection.Create(job.ToSubmitted(0));
                if (notifications is not null && !JobStatuses.IsTerminal(status.Status)
                    && await JobNotifications.WaitForTerminalAsync(notifications, status, waitFor, ct) is { } finished)
                {
                    status = finished;
                }

                var location = $"/v1/jobs/{job.JobId}";
                return JobStatuses.IsTerminal(status.Status) && wait is not null
                    ? TypedResults.Ok(await JobView.WithOutputsAsync(status, claimCheck, ct))
                    : TypedResults.Accepted(location, JobView.From(status));
            case SubmitOutcome.UnknownModel unknown:
                return Problems.Validation(new() { ["model"] = [$"Model '{unknown.Model}' is not served here; GET /v1/models lists the models."] });
            case SubmitOutcome.Rejected rejected:
                return Problems.Validation(rejected.Errors.ToDictionary());
            case SubmitOutcome.IdempotencyConflict conflict:
                return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Idempotency-Key reused",
                    detail: $"This Idempotency-Key already submitted job {conflict.ExistingJobId} with a different body.");
            default:
                throw new InvalidOperationException($"Unhandled outcome {outcome.GetType().Name}.");
        }
    }

    public static async Task<Results<Ok<List<JobView>>, ProblemHttpResult>> ListAsync(
        ApiCaller caller, IQuerySession session, string? status, string? model, int? limit, CancellationToken ct)
    {
        if (limit is < 1 or > 1000)
        {
            return Problems.Validation(new() { ["limit"] = ["limit must be between 1 and 1000."] });
        }

        if (status is not null && !(JobStatuses.IsTerminal(status) || status is JobStatuses.Queued or JobStatuses.Running))
        {
            return Problems.Validation(new() { ["status"] = ["status must be queued, running, succeeded, failed, cancelled or expired."] });
        }

        var query = session.Query<JobStatus>().Where(j => j.Tenant == caller.Tenant);
        if (status is not null)
        {
            query = query.Where(j => j.Status == status);
        }

        if (model is not null)
        {
            query = query.Where(j => j.Model == model);
        }

        var jobs = await query.OrderByDescending(j => j.SubmittedAt).Take(limit ?? 50).ToListAsync(ct);
        return TypedResults.Ok(jobs.Select(JobView.From).ToList());
    }

    public static async Task<Results<Ok<JobView>, ProblemHttpResult>> GetAsync(
        Guid id, ApiCaller caller, IQuerySession session, ClaimCheck claimCheck, string? asOf, string? version, CancellationToken ct)
    {
        var status = await session.LoadAsync<JobStatus>(id, ct);
        if (status is null || status.Tenant != caller.Tenant)
        {
            return Problems.JobNotFound(id);
        }

        if (asOf is null && version is null)
        {
            return TypedResults.Ok(await JobView.WithOutputsAsync(status, claimCheck, ct));
        }

        // Time travel: fold the job's events up to a version or a moment, with the same projection.
        var errors = new Dictionary<string, string[]>();
        DateTimeOffset? moment = null;
        if (asOf is not null)
        {
            if (DateTimeOffset.TryParse(asOf, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var parsed))
            {
                moment = parsed;
            }
            else
            {
                errors["asOf"] = ["asOf must be an ISO 8601 timestamp, e.g. 2026-11-25T18:00:00Z."];
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
        Guid id, ApiCaller caller, IQuerySession session, CancellationToken ct)
    {
        var tenant = caller.Tenant;

        var status = await session.LoadAsync<JobStatus>(id, ct);
        if (status is null || status.Tenant != tenant)
        {
            return Problems.JobNotFound(id);
        }

        var events = await session.Events.FetchStreamAsync(id, token: ct);
        return TypedResults.Ok(events
            .Select(e => new JobEventView(e.Id, e.EventTypeName, e.Sequence, e.Version, e.Timestamp, e.Data))
            .ToList());
    }

    public static async Task<Results<Ok<JobView>, ProblemHttpResult>> CancelAsync(
        Guid id, ApiCaller caller, IQuerySession session, JobClaims claims, INatsJSContext js, TimeProvider clock, CancellationToken ct)
    {
        var status = await session.LoadAsync<JobStatus>(id, ct);
        if (status is null || status.Tenant != caller.Tenant)
        {
            return Problems.JobNotFound(id);
        }

        if (status.Status == JobStatuses.Cancelled)
        {
            return TypedResults.Ok(JobView.From(status));
        }

        if (JobStatuses.IsTerminal(status.Status) || status.Status == JobStatuses.Running)
        {
            return Problems.CannotCancel(id, status.Status);
        }

        switch (await claims.ClaimForCancelAsync(id, ct))
        {
            case ClaimOutcome.Running:
                return Problems.CannotCancel(id, JobStatuses.Running);
            case ClaimOutcome.Won:
                await EventWire.PublishAsync(js, NatsTopology.EventSubject(status.Region, status.Model),
                    new V1.JobCancelled(id, clock.GetUtcNow(), caller.KeyId), $"{id}:terminal", announce: true, trace: null, ct);
                break;
        }

        return TypedResults.Ok(JobView.From(status with { Status = JobStatuses.Cancelled }));
    }

    public static async Task StreamAsync(Guid id, ApiCaller caller, IQuerySession session, INatsConnection nats, HttpResponse response, CancellationToken ct)
    {
        // Listen first, then read the current state: nothing that happens in between is lost.
        await using var notifications = await JobNotifications.SubscribeAsync(nats, id, ct);
        var status = await session.LoadAsync<JobStatus>(id, ct);
        if (status is null || status.Tenant != caller.Tenant)
        {
            await Problems.JobNotFound(id).ExecuteAsync(response.HttpContext);
            return;
        }

        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        await WriteEventAsync(response, "status", JsonSerializer.Serialize(JobView.From(status), JsonSerializerOptions.Web), ct);
        using var heartbeat = new PeriodicTimer(TimeSpan.FromSeconds(15));
        var next = notifications.Msgs.ReadAsync(ct).AsTask();
        var beat = heartbeat.WaitForNextTickAsync(ct).AsTask();
        while (!JobStatuses.IsTerminal(status.Status))
        {
            if (await Task.WhenAny(next, beat) == beat)
            {
                await response.WriteAsync(": keep-alive\n\n", ct);
                await response.Body.FlushAsync(ct);
                beat = heartbeat.WaitForNextTickAsync(ct).AsTask();
                continue;
            }

            var msg = await next;
            next = notifications.Msgs.ReadAsync(ct).AsTask();
            if (JobNotifications.Decode(msg) is not { } @event || JobStatusProjection.Evolve(status, @event) is not { } evolved)
            {
                continue;
            }

            status = evolved;
            await WriteEventAsync(response, EventNames.Of(@event), JsonSerializer.Serialize(@event, @event.GetType(), JsonSerializerOptions.Web), ct);
            await WriteEventAsync(response, "status", JsonSerializer.Serialize(JobView.From(status), JsonSerializerOptions.Web), ct);
        }
    }

    private static async Task WriteEventAsync(HttpResponse response, string type, string json, CancellationToken ct)
    {
        await response.WriteAsync($"event: {type}\ndata: {json}\n\n", ct);
        await response.Body.FlushAsync(ct);
    }

    /// <summary>Reads at most <see cref="MaxBodyBytes"/>; null when the body is larger.</summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        if (request.ContentLength > MaxBodyBytes)
        {
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes)
            {
                return null;
            }

            await buffer.WriteAsync(chunk.AsMemory(0, read), ct);
        }

        return buffer.ToArray();
    }
}

/// <summary>The API's problem details (RFC 7807), in one place.</summary>
public static class Problems
{
    public static ProblemHttpResult MalformedJson(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Malformed JSON", detail: detail);

    public static ProblemHttpResult CannotCancel(Guid id, string status) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Job cannot be cancelled",
            detail: $"Job {id} is {status}; only a queued job can be cancelled.");

    /// <summary>Also the answer for another tenant's job: its existence is not disclosed.</summary>
    public static ProblemHttpResult JobNotFound(Guid id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Job not found", detail: $"There is no job {id}.");

    /// <summary>422: well-formed JSON that breaks the contract, with every offending field.</summary>
    public static ProblemHttpResult Validation(Dictionary<string, string[]> errors) =>
        TypedResults.Problem(new HttpValidationProblemDetails(errors)
        {
            Status = StatusCodes.Status422UnprocessableEntity,
            Title = "The job request is invalid",
            Type = "https://tools.ietf.org/html/rfc4918#section-11.2",
        });
}
