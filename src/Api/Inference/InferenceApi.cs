using CqrsInference.Api.Http;
using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;

namespace CqrsInference.Api.Inference;

/// <summary>
/// The Open Inference Protocol (KServe v2) REST endpoints, beside /v1: health, server and model
/// metadata, readiness, and synchronous inference, which submits a job like <c>POST /v1/jobs</c>
/// (same keys, tenants and limits). Errors on /v2 are <c>{"error": "…"}</c> (<see cref="V2Errors"/>).
/// </summary>
internal static class InferenceApi
{
    public const string Tag = "Open Inference Protocol (v2)";

    /// <summary>Whether a request is one of the protocol's, whose errors take its shape.</summary>
    public static bool IsV2(PathString path) => path.StartsWithSegments("/v2", StringComparison.Ordinal);

    public static IEndpointRouteBuilder MapInferenceApi(this IEndpointRouteBuilder app)
    {
        var v2 = app.MapGroup("/v2").WithTags(Tag);

        // Liveness and readiness are public, like /alive and /health.
        v2.MapGet("/health/live", V2Models.Live)
            .WithName("V2ServerLive")
            .WithSummary("Whether the server is live: 200 {\"live\": true}")
            .AllowAnonymous();
        v2.MapGet("/health/ready", V2Models.ServerReadyAsync)
            .WithName("V2ServerReady")
            .WithSummary("Whether the server is ready (the checks of /health): 200 {\"ready\": true}, else 503 {\"ready\": false}")
            .Produces<V2ServerReady>(StatusCodes.Status503ServiceUnavailable)
            .AllowAnonymous();

        // HEAD as /alive and /health answer it (a load balancer's probe), left out of the document.
        v2.MapMethods("/health/live", [HttpMethods.Head], V2Models.Live).AllowAnonymous().ExcludeFromDescription();
        v2.MapMethods("/health/ready", [HttpMethods.Head], V2Models.ServerReadyAsync).AllowAnonymous().ExcludeFromDescription();
        v2.MapGet("", V2Models.Server)
            .WithName("V2ServerMetadata")
            .WithSummary("The server's name and version, and the protocol extensions it supports (none)")
            .RequirePolicy(ApiPolicies.AnyCaller);

        MapModels(v2);
        MapInfer(v2);
        return app;
    }

    private static void MapModels(RouteGroupBuilder v2)
    {
        const string metadata = "A model's metadata as the manifest has it: name, versions, platform, inputs and outputs (-1: a dynamic dimension)";
        v2.MapGet("/models/{model}", V2Models.Metadata)
            .WithName("V2ModelMetadata").WithSummary(metadata).ProducesV2Errors(404).RequirePolicy(ApiPolicies.Read);
        v2.MapGet("/models/{model}/versions/{version}", V2Models.MetadataVersion)
            .WithName("V2ModelVersionMetadata").WithSummary(metadata).ProducesV2Errors(404).RequirePolicy(ApiPolicies.Read);

        const string ready = "Whether the model is ready: served here and the server ready (200 {\"name\", \"ready\": true}, else 503)";
        v2.MapGet("/models/{model}/ready", V2Models.ReadyAsync)
            .WithName("V2ModelReady").WithSummary(ready).Produces<V2ModelReady>(StatusCodes.Status503ServiceUnavailable).ProducesV2Errors(404).RequirePolicy(ApiPolicies.Read);
        v2.MapGet("/models/{model}/versions/{version}/ready", V2Models.ReadyVersionAsync)
            .WithName("V2ModelVersionReady").WithSummary(ready).Produces<V2ModelReady>(StatusCodes.Status503ServiceUnavailable).ProducesV2Errors(404).RequirePolicy(ApiPolicies.Read);
    }

    private static void MapInfer(RouteGroupBuilder v2)
    {
        const string description = "Synchronous inference in the Open Inference Protocol layout. The request becomes a job of the caller's tenant, "
            + "as POST /v1/jobs (same keys, limits, Idempotency-Key), and the answer waits for it (?wait=, default 30 s, at most 60 s): "
            + "200 {model_name, model_version, id, parameters: {job_id, served_by, ran_in_region}, outputs} with only the requested outputs. "
            + "parameters: priority, region, deadline, timeout (strings, as on /v1); others are ignored. "
            + "400 for a request the model cannot take, 404 for an unknown model or version, 422 when the job failed on its input, "
            + "503 with Retry-After and Location: /v1/jobs/{id} when the job did not end within the wait, 504 when it timed out.";
        int[] errors = [400, 404, 409, 410, 413, 415, 422, 429, 503, 504];

        v2.MapPost("/models/{model}/infer", InferEndpoint.InferAsync)
            .WithName("V2Infer").WithSummary("Run an inference on the model (its served version)").WithDescription(description)
            .Accepts<V2InferRequest>("application/json").ProducesV2Errors(errors)
            .WithRequestHeader(ApiContract.IdempotencyKey, ApiContract.IdempotencyKeyDescription)
            .WithBodyLimit(Jobs.Submitting.SubmitRequestReader.MaxBodyBytes)
            .RequirePolicy(ApiPolicies.Submit);
        v2.MapPost("/models/{model}/versions/{version}/infer", InferEndpoint.InferVersionAsync)
            .WithName("V2InferVersion").WithSummary("Run an inference on that version of the model (404 unless that version is serving)")
            .WithDescription(description)
            .Accepts<V2InferRequest>("application/json").ProducesV2Errors(errors)
            .WithRequestHeader(ApiContract.IdempotencyKey, ApiContract.IdempotencyKeyDescription)
            .WithBodyLimit(Jobs.Submitting.SubmitRequestReader.MaxBodyBytes)
            .RequirePolicy(ApiPolicies.Submit);
    }
}
