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
        int TimeoutMs);

    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/models", (ModelCatalog catalog) => List(catalog))
            .WithTags("Models")
            .WithName("ListModels")
            .WithSummary("The models served, with their input and output tensors (-1: dynamic dimension)")
            .RequirePolicy(ApiPolicies.AnyCaller);
        return app;
    }

    public static Ok<List<ModelView>> List(ModelCatalog catalog) =>
        TypedResults.Ok(catalog.All
            .OrderBy(m => m.Name, StringComparer.Ordinal)
            .Select(m => new ModelView(m.Name, [m.Version], m.Description, m.Inputs, m.Outputs, m.Batching, m.ExecutionTimeoutMs))
            .ToList());
}
