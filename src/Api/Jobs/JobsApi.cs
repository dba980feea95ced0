using System.Text.Json;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Projections.JobStatus;
using Marten;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

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
                + "The Idempotency-Key header makes a retried submit return the same job.")
            .Accepts<JsonElement>("application/json")
            .RequireRole(ApiRoles.Submit);

        jobs.MapGet("/{id:guid}", GetAsync)
            .WithName("GetJob")
            .WithSummary("The job's status, timings and outputs; with ?version=n or ?asOf=<timestamp>, the job as it stood then")
            .RequireRole(ApiRoles.Read, ApiRoles.Auditor);

        jobs.MapGet("/{id:guid}/events", GetEventsAsync)
            .WithName("GetJobEvents")
            .WithSummary("The job's recorded events, in order")
            .RequireRole(ApiRoles.Read, ApiRoles.Auditor);

        return app;
    }

    public static async Task<Results<Accepted<JobView>, ProblemHttpResult>> SubmitAsync(
        HttpRequest request,
        ApiCaller caller,
        ISender sender,
        IQuerySession session,
        TimeProvider clock,
        CancellationToken ct)
    {
        var tenant = caller.Tenant;
        if (request.ContentType is not { } contentType || !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
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

        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 32 });
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Malformed JSON",
                detail: $"The body is not valid JSON: {e.Message}");
        }

        var (parsed, errors) = JobRequestParser.Parse(root);
        if (parsed is null)
        {
            return Problems.Validation(errors);
        }

        var idempotencyKey = request.Headers["Idempotency-Key"].ToString() is { Length: > 0 } key ? key : null;
        if (idempotencyKey is { Length: > 256 })
        {
            return Problems.Validation(new() { ["Idempotency-Key"] = ["The Idempotency-Key header is at most 256 characters."] });
        }

        var outcome = await sender.Send(
            new SubmitInferenceJob(tenant, parsed.Model, parsed.Region, parsed.Priority, parsed.Inputs, parsed.Metadata,
                idempotencyKey, RequestDigest.Of(body), clock.GetUtcNow()),
            ct);

        switch (outcome)
        {
            case SubmitOutcome.Accepted accepted:
                var job = accepted.Job;
                var current = accepted.Replayed ? await session.LoadAsync<JobStatus>(job.JobId, ct) : null;
                var view = current is not null
                    ? JobView.From(current)
                    : new JobView(job.JobId, "queued", job.Model, job.ModelVersion, job.Region, job.Priority, job.SubmittedAt,
                        null, null, 0, null, null, null, null, null, null, null, job.Metadata);
                return TypedResults.Accepted($"/v1/jobs/{job.JobId}", view);
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

    public static async Task<Results<Ok<JobView>, ProblemHttpResult>> GetAsync(
        Guid id, ApiCaller caller, IQuerySession session, string? asOf, string? version, CancellationToken ct)
    {
        var status = await session.LoadAsync<JobStatus>(id, ct);
        if (status is null || status.Tenant != caller.Tenant)
        {
            return Problems.JobNotFound(id);
        }

        if (asOf is null && version is null)
        {
            return TypedResults.Ok(JobView.From(status));
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
            : TypedResults.Ok(JobView.From(then));
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
