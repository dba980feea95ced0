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

    /// <summary>
    /// The served model of that name: its serving version <paramref name="version"/> when one is
    /// named, else its default; or the 404 that says why not (naming the served versions).
    /// </summary>
    public static (ModelDefinition? Model, V2ErrorResult? Error) Find(ModelCatalog catalog, string name, string? version) =>
        name.Length > MaxShown || version?.Length > MaxShown
            ? (null, V2Errors.NotFound($"Model '{Shown(name)}'{(version is null ? "" : $" version '{Shown(version)}'")} is not served here (names and versions are at most {MaxShown - 1} characters); GET /v1/models lists the models."))
            : catalog.Resolve(name, version, Guid.Empty) switch
        {
            VersionResolution.Resolved { Pinned: true } pinned => (pinned.Model, null),
            VersionResolution.Resolved when catalog.TryGet(name, out var model) => (model, null),
            VersionResolution.VersionNotServed refusal => (null, V2Errors.NotFound(refusal.Detail)),
            _ => (null, V2Errors.NotFound($"Model '{name}' is not served here; GET /v1/models lists the models.")),
        };

    /// <summary>Longer path names are cut when the answer names them back.</summary>
    private const int MaxShown = 64;

    private static string Shown(string text) => Commands.Shown.Cut(text, MaxShown);

    /// <summary>
    /// A model's metadata: <c>versions</c> lists its serving versions (the default first), as the
    /// protocol has them; <c>version_states</c> (an extension) lists every version with its state and routing.
    /// </summary>
    public static V2ModelMetadata MetadataOf(ModelCatalog catalog, ModelDefinition model)
    {
        var versions = catalog.VersionsOf(model.Name);
        return new(model.Name, [.. versions.Where(v => v.IsServing).OrderByDescending(v => v.IsDefault).Select(v => v.Version)], Platform,
            [.. model.Inputs.Select(Tensor)], [.. model.Outputs.Select(Tensor)],
            [.. versions.Select(v => new V2VersionState(v.Version, v.State, v.IsDefault, v.Weight))]);
    }

    private static V2TensorMetadata Tensor(TensorSpec spec) => new(spec.Name, spec.Datatype, spec.Shape);

    public static Results<Ok<V2ModelMetadata>, V2ErrorResult> Metadata(string model, ModelCatalog catalog) =>
        MetadataVersion(model, null, catalog);

    public static Results<Ok<V2ModelMetadata>, V2ErrorResult> MetadataVersion(string model, string? version, ModelCatalog catalog)
    {
        var (found, unknown) = Find(catalog, model, version);
        return found is null ? unknown! : TypedResults.Ok(MetadataOf(catalog, found));
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
