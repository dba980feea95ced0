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
/// them, plus any it declares with <see cref="ReadsQuery"/>. A parameter given twice is refused too
/// unless it takes a list (the framework would join <c>version=1&amp;version=2</c> into <c>1,2</c> and
/// the endpoint would name the wrong fault). Refused with <c>400</c> before the
/// handler runs, so nothing changes: problem+json on /v1, <c>{"error": …}</c> on /v2. Endpoints the
/// description leaves out (the dashboard's page) are not checked.
/// </summary>
internal static class KnownQueryParameters
{
    public static WebApplication UseKnownQueryParameters(this WebApplication app)
    {
        var known = new Lazy<FrozenDictionary<string, QueryNames>>(() => Read(app.Services.GetRequiredService<IApiDescriptionGroupCollectionProvider>()));
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
            var unknown = http.Request.Query.Keys.Where(k => !names.Names.Contains(k) && !also.Contains(k, StringComparer.OrdinalIgnoreCase)).ToList();
            var repeated = http.Request.Query.Where(q => q.Value.Count > 1 && !names.Lists.Contains(q.Key) && !unknown.Contains(q.Key)).ToList();
            if (unknown.Count == 0 && repeated.Count == 0)
            {
                return next(http);
            }

            var takes = names.Names.Concat(also).Order(StringComparer.Ordinal).ToList();
            // The caller's names cut short, and at most FieldErrors.MaxListed of them (a 5,000-character name was the key in full).
            var errors = new Commands.FieldErrors();
            foreach (var parameter in unknown)
            {
                errors.Add(Commands.Shown.Cut(parameter), Refusal(http.Request, parameter, takes));
            }

            foreach (var (parameter, values) in repeated)
            {
                errors.Add(parameter, $"{parameter} is given {values.Count} times; give it once.");
            }

            return RefuseAsync(http, errors.ToDictionary());
        });
        return app;
    }

    /// <summary>Why a query parameter was refused, in the caller's terms.</summary>
    internal static string Refusal(HttpRequest request, string parameter, IReadOnlyList<string> takes) =>
        $"Unknown query parameter '{Commands.Shown.Cut(parameter)}': {request.Method} {request.Path} takes "
        + (takes.Count == 0 ? "none" : string.Join(", ", takes)) + " (GET /openapi/v1.json describes each).";

    private static Task RefuseAsync(HttpContext http, Dictionary<string, string[]> errors)
    {
        var problem = Problems.BadQuery(errors);
        return http.Request.Path.StartsWithSegments("/v2") ? V2Errors.From(problem).ExecuteAsync(http) : problem.ExecuteAsync(http);
    }

    /// <summary>An endpoint's query parameters, and those of them that take a list (given more than once).</summary>
    private sealed record QueryNames(FrozenSet<string> Names, FrozenSet<string> Lists);

    private static FrozenDictionary<string, QueryNames> Read(IApiDescriptionGroupCollectionProvider descriptions) =>
        descriptions.ApiDescriptionGroups.Items
            .SelectMany(g => g.Items)
            .Where(d => d.HttpMethod is not null && d.ActionDescriptor.DisplayName is not null)
            .GroupBy(d => Key(d.HttpMethod!, d.ActionDescriptor.DisplayName!))
            .ToFrozenDictionary(g => g.Key, g =>
            {
                var query = g.SelectMany(d => d.ParameterDescriptions).Where(p => p.Source == BindingSource.Query).ToList();
                return new QueryNames(
                    query.Select(p => p.Name).ToFrozenSet(StringComparer.OrdinalIgnoreCase),
                    query.Where(p => IsList(p.Type)).Select(p => p.Name).ToFrozenSet(StringComparer.OrdinalIgnoreCase));
            });

    private static bool IsList(Type? type) =>
        type is not null && (type.IsArray || type == typeof(Microsoft.Extensions.Primitives.StringValues));

    private static string Key(string method, string displayName) => $"{method.ToUpperInvariant()} {displayName}";
}
