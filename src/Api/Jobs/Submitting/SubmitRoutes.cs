using CqrsInference.Api.Http;
using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;

namespace CqrsInference.Api.Jobs.Submitting;

/// <summary>The submit routes, <c>POST /v1/jobs</c> and <c>POST /v1/jobs:bulk</c>, and their HTTP contract.</summary>
internal static class SubmitRoutes
{
    public static IEndpointRouteBuilder MapSubmits(this IEndpointRouteBuilder app, RouteGroupBuilder jobs)
    {
        jobs.MapPost("", SubmitEndpoint.SubmitAsync)
            .WithName("SubmitJob")
            .WithSummary("Submit an inference job")
            .WithDescription("Validates the inputs against the model, makes the job durable in the model's JetStream work queue and answers 202 with its id. "
                + "The Idempotency-Key header makes a retried submit return the same job. With ?wait=5s (at most 60 s) the answer waits for the job: "
                + "200 with the finished job if it ends in time, else 202 as usual.")
            .Accepts<SubmitJobRequest>("application/json")
            .WithSubmitContract()
            .WithResponseHeader(StatusCodes.Status202Accepted, "Location", "The job's address, /v1/jobs/{id}.")
            .WithBodyLimit(SubmitRequestReader.MaxBodyBytes)
            .RequirePolicy(ApiPolicies.Submit);

        app.MapPost("/v1/jobs:bulk", BulkSubmitEndpoint.SubmitAsync)
            .WithTags("Jobs")
            .WithName("SubmitJobs")
            .WithSummary("Submit many inference jobs together")
            .WithDescription($"Body {{\"jobs\": [ <job>, … ]}} with 1 to {BulkSubmitEndpoint.MaxJobs} jobs, each as for POST /v1/jobs. "
                + "Accepted (202, every job with its own id, in order) or refused (422 naming every fault as jobs[i].…) together; "
                + "the same limits apply per job. With an Idempotency-Key a retry returns the same jobs.")
            .Accepts<BulkSubmitRequest>("application/json")
            .WithMetadata(new Http.ReadsQuery("wait")) // refused by the endpoint with its reason
            .WithSubmitContract()
            .WithBodyLimit(SubmitRequestReader.MaxBodyBytes)
            .RequirePolicy(ApiPolicies.Submit);

        return app;
    }

    /// <summary>What both submits declare: their header, and every way a submit is refused.</summary>
    private static RouteHandlerBuilder WithSubmitContract(this RouteHandlerBuilder builder) => builder
        .WithRequestHeader(ApiContract.IdempotencyKey, ApiContract.IdempotencyKeyDescription)
        .WithProblems(
            (StatusCodes.Status400BadRequest, "The body is not UTF-8 JSON (or repeats a key, or nests deeper than 32)."),
            (StatusCodes.Status409Conflict, "The Idempotency-Key submitted a different body before."),
            (StatusCodes.Status413PayloadTooLarge, $"The body is larger than {SubmitRequestReader.MaxBodyBytes / (1024 * 1024)} MiB."),
            (StatusCodes.Status415UnsupportedMediaType, "The body is not application/json."),
            (StatusCodes.Status422UnprocessableEntity, "The job breaks the contract or the model's inputs; 'errors' names every fault by field."),
            (StatusCodes.Status429TooManyRequests, "The tenant is over its submit rate or its daily quota."),
            (StatusCodes.Status503ServiceUnavailable, "The model's queue is full, or a store did not confirm the job in time; retry after Retry-After seconds (with the same Idempotency-Key)."));
}
