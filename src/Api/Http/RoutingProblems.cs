namespace CqrsInference.Api.Http;

/// <summary>
/// Routing's own answers (no endpoint at the path, a method the path does not take, a body the
/// endpoint does not read) carry only a title; this says in <c>detail</c> what the caller can do
/// about them. Problems that already say something are left as they are. (/v2 answers in its own
/// shape, with the same words: <see cref="Inference.V2ProblemDetailsWriter"/>.)
/// </summary>
internal static class RoutingProblems
{
    public static void Describe(ProblemDetailsContext context)
    {
        var (http, problem) = (context.HttpContext, context.ProblemDetails);
        if (!string.IsNullOrEmpty(problem.Detail))
        {
            return;
        }

        problem.Detail = (problem.Status ?? http.Response.StatusCode) switch
        {
            StatusCodes.Status404NotFound when http.GetEndpoint() is null =>
                $"No endpoint answers {http.Request.Method} {http.Request.Path}; GET /openapi/v1.json lists them (and /docs shows them).",
            StatusCodes.Status405MethodNotAllowed =>
                $"{http.Request.Method} is not allowed on {http.Request.Path}; it takes {http.Response.Headers.Allow}.",
            StatusCodes.Status415UnsupportedMediaType => $"Send application/json, not '{http.Request.ContentType}'.",
            _ => null,
        };
    }
}
