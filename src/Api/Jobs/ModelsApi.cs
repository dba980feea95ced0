using CqrsInference.Commands.Models;
using CqrsInference.Api.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Jobs;

internal static class ModelsApi
{
    public sealed record ModelView(
        string Name,
        IReadOnlyList<string> Versions,
        string Description,
        IReadOnlyList<TensorSpec> Inputs,
        IReadOnlyList<TensorSpec> Outputs,
        BatchingSpec? Batching,
        int TimeoutMs,
        string DefaultVersion,
        IReadOnlyList<VersionView> VersionDetails);

    /// <summary>
    /// One version of a model: its state (serving: jobs run on it; retired: listed only), whether it
    /// is the default, its share of unpinned jobs (percent; 0: none) and what may differ between
    /// versions (runner, description, batching, slots, timeout).
    /// </summary>
    public sealed record VersionView(string Version, string State, bool Default, int Weight, string Runner, string Description, BatchingSpec? Batching, int Slots, int TimeoutMs);

    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/models", (ModelCatalog catalog) => List(catalog))
            .WithTags("Models")
            .WithName("ListModels")
            .WithSummary("The models served, with their input and output tensors (-1: dynamic dimension) and their versions")
            .WithDescription("versions lists the serving versions, the default first; versionDetails every version with its state and routing. The top-level description, batching and timeoutMs are the default version's.")
            .RequirePolicy(ApiPolicies.AnyCaller);
        return app;
    }

    public static Ok<List<ModelView>> List(ModelCatalog catalog) =>
        TypedResults.Ok(catalog.All
            .OrderBy(m => m.Name, StringComparer.Ordinal)
            .Select(m => ViewOf(catalog, m))
            .ToList());

    private static ModelView ViewOf(ModelCatalog catalog, ModelDefinition model)
    {
        var versions = catalog.VersionsOf(model.Name);
        return new ModelView(model.Name, [.. versions.Where(v => v.IsServing).OrderByDescending(v => v.IsDefault).Select(v => v.Version)],
            model.Description, model.Inputs, model.Outputs, model.Batching, model.ExecutionTimeoutMs, model.Version,
            [.. versions.Select(v => new VersionView(v.Version, v.State, v.IsDefault, v.Weight, v.Model.Runner, v.Model.Description, v.Model.Batching, v.Model.Slots, v.Model.ExecutionTimeoutMs))]);
    }
}
