using System.Collections.Frozen;
using CqrsInference.Api.Inference;
using Microsoft.AspNetCore.Mvc.ApiExplorer;
using Microsoft.AspNetCore.Mvc.ModelBinding;

namespace CqrsInference.Api.Http;

/// <summary>
/// Query parameters an endpoint reads from <c>HttpRequest.Query</c> itself, besides those its handler
/// binds (which the framework knows): they are then not refused as unknown. An endpoint that
/// <see cref="RefusesUnknown"/> names the unknown ones in its own answer and is not checked here.
/// </summary>
internal sealed record ReadsQuery(params string[] Names)
{
    public bool RefusesUnknown { get; init; }
}

/// <summary>
/// A query parameter an endpoint does not take is refused, not ignored: <c>GET /v1/jobs?stauts=failed</c>
/// would otherwise list every job as if unfiltered, and <c>POST /v1/jobs?wiat=5s</c> would queue the
/// job and answer 202 to a caller who asked to wait. The names an endpoint takes are the ones the API
/// description (and so <c>/openapi/v1.json</c>) gives it, compared without case as the framework binds
/// them, plus any it declares with <see cref="ReadsQuery"/>. Refused with <c>400</c> before the
/// handler runs, so nothing changes: problem+json on /v1, <c>{"error": …}</c> on /v2. Endpoints the
/// description leaves out (the dashboard's page) are not checked.
/// </summary>
internal static class KnownQueryParameters
{
    public static WebApplication UseKnownQueryParameters(this WebApplication app)
    {
        var known = new Lazy<FrozenDictionary<string, FrozenSet<string>>>(() => Read(app.Services.GetRequiredService<IApiDescriptionGroupCollectionProvider>()));
        app.Use((http, next) =>
        {
            if (http.Request.Query.Count == 0 || http.GetEndpoint() is not { DisplayName: { } name } endpoint
                || !known.Value.TryGetValue(Key(http.Request.Method, name), out var names))
            {
                return next(http);
            }

            var reads = endpoint.Metadata.GetOrderedMetadata<ReadsQuery>();
            if (reads.Any(r => r.RefusesUnknown))
            {
                return next(http);
            }

            var also = reads.SelectMany(r => r.Names).ToList();
            var unknown = http.Request.Query.Keys.Where(k => !names.Contains(k) && !also.Contains(k, StringComparer.OrdinalIgnoreCase)).ToList();
            return unknown.Count == 0 ? next(http) : RefuseAsync(http, unknown, names.Concat(also).Order(StringComparer.Ordinal).ToList());
        });
        return app;
    }

    /// <summary>Why a query parameter was refused, in the caller's terms.</summary>
    internal static string Refusal(HttpRequest request, string parameter, IReadOnlyList<string> takes) =>
        $"Unknown query parameter '{(parameter.Length > 100 ? parameter[..100] + "…" : parameter)}': {request.Method} {request.Path} takes "
        + (takes.Count == 0 ? "none" : string.Join(", ", takes)) + " (GET /openapi/v1.json describes each).";

    private static Task RefuseAsync(HttpContext http, List<string> unknown, IReadOnlyList<string> takes)
    {
        var errors = unknown.ToDictionary(k => k, k => new[] { Refusal(http.Request, k, takes) }, StringComparer.Ordinal);
        var problem = Problems.BadQuery(errors);
        return http.Request.Path.StartsWithSegments("/v2") ? V2Errors.From(problem).ExecuteAsync(http) : problem.ExecuteAsync(http);
    }

    private static FrozenDictionary<string, FrozenSet<string>> Read(IApiDescriptionGroupCollectionProvider descriptions) =>
        descriptions.ApiDescriptionGroups.Items
            .SelectMany(g => g.Items)
            .Where(d => d.HttpMethod is not null && d.ActionDescriptor.DisplayName is not null)
            .GroupBy(d => Key(d.HttpMethod!, d.ActionDescriptor.DisplayName!))
            .ToFrozenDictionary(
                g => g.Key,
                g => g.SelectMany(d => d.ParameterDescriptions).Where(p => p.Source == BindingSource.Query).Select(p => p.Name).ToFrozenSet(StringComparer.OrdinalIgnoreCase));

    private static string Key(string method, string displayName) => $"{method.ToUpperInvariant()} {displayName}";
}
