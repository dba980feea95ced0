using CqrsInference.Commands.Models;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CqrsInference.Api.Inference;

/// <summary>
/// The protocol's metadata and health endpoints. A model's metadata is its manifest entry; a model
/// is ready when it is served here and the server is ready (its jobs are accepted; one may still
/// wait for a processor, which scales to zero). The server is ready when the checks behind
/// <c>/health</c> pass; not ready is 503 (the protocol asks only for a status other than 200).
/// </summary>
internal static class V2Models
{
    /// <summary>What <c>platform</c> says of every model: each is an ONNX file run by ONNX Runtime.</summary>
    public const string Platform = "onnxruntime_onnx";

    /// <summary>The served model of that name (and version, when one is named), or the 404 that says why not.</summary>
    public static (ModelDefinition? Model, V2ErrorResult? Error) Find(ModelCatalog catalog, string name, string? version)
    {
        if (!catalog.TryGet(name, out var model))
        {
            return (null, V2Errors.NotFound($"Model '{name}' is not served here; GET /v1/models lists the models."));
        }

        return version is null || version == model.Version
            ? (model, null)
            : (null, V2Errors.NotFound($"Model '{name}' has no version '{version}'; the version served is '{model.Version}'."));
    }

    public static V2ModelMetadata MetadataOf(ModelDefinition model) =>
        new(model.Name, [model.Version], Platform, [.. model.Inputs.Select(Tensor)], [.. model.Outputs.Select(Tensor)]);

    private static V2TensorMetadata Tensor(TensorSpec spec) => new(spec.Name, spec.Datatype, spec.Shape);

    public static Results<Ok<V2ModelMetadata>, V2ErrorResult> Metadata(string model, ModelCatalog catalog) =>
        MetadataVersion(model, null, catalog);

    public static Results<Ok<V2ModelMetadata>, V2ErrorResult> MetadataVersion(string model, string? version, ModelCatalog catalog)
    {
        var (found, unknown) = Find(catalog, model, version);
        return found is null ? unknown! : TypedResults.Ok(MetadataOf(found));
    }

    public static Task<Results<Ok<V2ModelReady>, JsonHttpResult<V2ModelReady>, V2ErrorResult>> ReadyAsync(
        string model, ModelCatalog catalog, HealthCheckService health, CancellationToken ct) =>
        ReadyVersionAsync(model, null, catalog, health, ct);

    public static async Task<Results<Ok<V2ModelReady>, JsonHttpResult<V2ModelReady>, V2ErrorResult>> ReadyVersionAsync(
        string model, string? version, ModelCatalog catalog, HealthCheckService health, CancellationToken ct)
    {
        var (found, unknown) = Find(catalog, model, version);
        if (found is null)
        {
            return unknown!;
        }

        var ready = new V2ModelReady(found.Name, await IsReadyAsync(health, ct));
        return ready.Ready ? TypedResults.Ok(ready) : TypedResults.Json(ready, statusCode: StatusCodes.Status503ServiceUnavailable);
    }

    public static Ok<V2ServerLive> Live() => TypedResults.Ok(new V2ServerLive(true));

    public static async Task<Results<Ok<V2ServerReady>, JsonHttpResult<V2ServerReady>>> ServerReadyAsync(HealthCheckService health, CancellationToken ct) =>
        await IsReadyAsync(health, ct)
            ? TypedResults.Ok(new V2ServerReady(true))
            : TypedResults.Json(new V2ServerReady(false), statusCode: StatusCodes.Status503ServiceUnavailable);

    public static Ok<V2ServerMetadata> Server() =>
        TypedResults.Ok(new V2ServerMetadata("cqrsinference", typeof(V2Models).Assembly.GetName().Version?.ToString() ?? "0", []));

    /// <summary>The readiness checks of <c>/health</c> (NATS, and PostgreSQL for the roles that use it).</summary>
    private static async Task<bool> IsReadyAsync(HealthCheckService health, CancellationToken ct) =>
        (await health.CheckHealthAsync(c => c.Tags.Contains("ready"), ct)).Status == HealthStatus.Healthy;
}
