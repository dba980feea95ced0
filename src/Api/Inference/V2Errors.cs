using CqrsInference.Commands;
using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;

namespace CqrsInference.Api.Inference;

/// <summary>
/// An error answer on /v2: <c>{"error": "…"}</c> as <c>application/json</c> with its status, and
/// <c>Retry-After</c> (or where the job can be followed) when the caller should come back.
/// </summary>
internal sealed class V2ErrorResult(int statusCode, string message, TimeSpan? retryAfter = null, string? location = null)
    : IResult, IStatusCodeHttpResult, IValueHttpResult, IValueHttpResult<V2Error>
{
    public int StatusCode => statusCode;

    int? IStatusCodeHttpResult.StatusCode => statusCode;

    public V2Error Value => new(message);

    object? IValueHttpResult.Value => Value;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        if (retryAfter is { } after)
        {
            httpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }

        if (location is not null)
        {
            httpContext.Response.Headers.Location = location;
        }

        return TypedResults.Json(Value, statusCode: statusCode).ExecuteAsync(httpContext);
    }
}

/// <summary>
/// The errors of the /v2 endpoints, in one place. On /v2 a request the server cannot take as sent
/// is <c>400</c> (as KServe and Triton answer: malformed JSON, a bad tensor, an unknown output, a
/// parameter of the wrong kind, a tensor the model does not take), an unknown model or version
/// <c>404</c>; the rest keep their /v1 meaning (413, 415, 409, 429, 503 with Retry-After).
/// </summary>
internal static class V2Errors
{
    public static V2ErrorResult BadRequest(string message) => new(StatusCodes.Status400BadRequest, message);

    public static V2ErrorResult NotFound(string message) => new(StatusCodes.Status404NotFound, message);

    /// <summary>The /v2 form of a problem the shared request reading answered; its 422s are 400s here.</summary>
    public static V2ErrorResult From(ProblemHttpResult problem) =>
        new(problem.StatusCode == StatusCodes.Status422UnprocessableEntity ? StatusCodes.Status400BadRequest : problem.StatusCode, Describe(problem.ProblemDetails));

    /// <summary>
    /// Field errors as one line, in the order they were found (the body's order: <c>inputs[2]</c>
    /// before <c>inputs[10]</c>, which a sort by name would reverse), the count of those not listed
    /// last: <c>inputs[0].shape: …; outputs[1].name: …; $: 3 more faults not listed …</c>.
    /// </summary>
    public static string Describe(IReadOnlyDictionary<string, string[]> errors) =>
        string.Join("; ", errors.OrderBy(e => e.Key == FieldErrors.Whole).SelectMany(e => e.Value.Select(m => $"{e.Key}: {m}")));

    /// <summary>A problem's words as one line: its field errors, else its detail, else its title.</summary>
    public static string Describe(ProblemDetails problem) => problem switch
    {
        HttpValidationProblemDetails { Errors.Count: > 0 } validation => Describe(validation.Errors.AsReadOnly()),
        { Detail: { Length: > 0 } detail } => detail,
        { Title: { Length: > 0 } title } => title,
        _ => ReasonPhrases.GetReasonPhrase(problem.Status ?? StatusCodes.Status500InternalServerError),
    };

    /// <summary>Declares the /v2 error answers an endpoint can give, for the OpenAPI document.</summary>
    public static RouteHandlerBuilder ProducesV2Errors(this RouteHandlerBuilder builder, params int[] statusCodes)
    {
        foreach (var status in statusCodes)
        {
            builder.Produces<V2Error>(status, "application/json");
        }

        return builder;
    }
}

/// <summary>
/// Writes every problem details answer on /v2 in the protocol's shape, whoever produced it: the
/// framework (no route, 405, a body it could not bind), authentication (401, 403), the body limit
/// (413) and the exception handler (503 when a store is away). Registered before the default
/// writer, which keeps problem+json everywhere else.
/// </summary>
internal sealed class V2ProblemDetailsWriter : IProblemDetailsWriter
{
    public bool CanWrite(ProblemDetailsContext context) => InferenceApi.IsV2(context.HttpContext.Request.Path);

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        var (http, problem) = (context.HttpContext, context.ProblemDetails);

        // Routing's own answers carry only a title: say what the caller can do about them.
        var message = (problem.Detail, http.Response.StatusCode) switch
        {
            (null or "", StatusCodes.Status404NotFound) => $"No endpoint {http.Request.Method} {http.Request.Path}; the protocol's are under /v2/health, /v2/models/{{model}}.",
            (null or "", StatusCodes.Status405MethodNotAllowed) => $"{http.Request.Method} is not allowed on {http.Request.Path}.",
            (null or "", StatusCodes.Status415UnsupportedMediaType) => $"Send application/json, not '{http.Request.ContentType}'.",
            _ => V2Errors.Describe(problem),
        };
        return new ValueTask(http.Response.WriteAsJsonAsync(new V2Error(message), http.RequestAborted));
    }
}
