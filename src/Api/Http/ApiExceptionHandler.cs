using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace CqrsInference.Api.Http;

/// <summary>
/// What a request that threw answers, when the fault is the caller's or a dependency's rather than
/// a bug: a request the framework could not bind (a body that is not the JSON the endpoint reads,
/// a query parameter of the wrong type) is the 4xx the framework chose, with its reason; NATS or
/// PostgreSQL out of reach is 503 with Retry-After (a submit retried with its Idempotency-Key
/// returns the same job, whether or not the first attempt was stored). Everything else stays a 500.
/// </summary>
internal sealed partial class ApiExceptionHandler(IProblemDetailsService problems, ILogger<ApiExceptionHandler> logger) : IExceptionHandler
{
    public const int RetryAfterSeconds = 2;

    private const string SubmittingJob = "cqrsi:submitting-job";

    /// <summary>
    /// The request is submitting this job: an outage's 503 then names it, since it may have been
    /// stored all the same (a publish the log stored but did not confirm in time), and a caller
    /// without an Idempotency-Key can ask for it instead of submitting it again.
    /// </summary>
    public static void Submitting(HttpContext http, Guid jobId) => http.Items[SubmittingJob] = jobId;

    /// <summary>
    /// The request is submitting these jobs together (a bulk submit): an outage's 503 names them all,
    /// since the log may have stored some of them before it stopped answering.
    /// </summary>
    public static void Submitting(HttpContext http, IReadOnlyList<Guid> jobIds) => http.Items[SubmittingJob] = jobIds;

    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        if (exception is BadHttpRequestException { InnerException: System.Text.Json.JsonException json } && Unmapped().Match(json.Message) is { Success: true } unknown
            && !http.Response.HasStarted)
        {
            return await UnknownFieldAsync(http, exception, Commands.Shown.Cut(unknown.Groups["name"].Value));
        }

        var (status, title, detail) = exception switch
        {
            // A body over the limit (Kestrel's count of a chunked body) is titled as the limit's own 413 is.
            BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } bad => (bad.StatusCode, "Payload too large", Describe(bad)),
            BadHttpRequestException bad => (bad.StatusCode, "Bad request", Describe(bad)),

            // The request's bound cancelled the store's call, which gave up with its own exception.
            _ when StoreDeadline.TimedOut(http) && (Projections.Outages.IsOutage(exception) || exception is OperationCanceledException) =>
                (StatusCodes.Status503ServiceUnavailable, "Service unavailable",
                 StoreDeadline.Detail(http.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<ApiTimeoutOptions>>().Value.Request)),
            _ when Projections.Outages.IsOutage(exception) && !http.RequestAborted.IsCancellationRequested =>
                (StatusCodes.Status503ServiceUnavailable, "Service unavailable",
                 $"A store the API depends on did not answer; retry in {RetryAfterSeconds} s (with the same Idempotency-Key for a submit)."),
            _ => (0, "", ""),
        };
        if (status == 0 || http.Response.HasStarted)
        {
            return false;
        }

        if (status == StatusCodes.Status503ServiceUnavailable)
        {
            var cause = exception.GetBaseException();
            LogUnavailable(logger, http.Request.Method, http.Request.Path, cause.GetType().Name, cause.Message);
            http.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        var problem = new ProblemDetails { Status = status, Title = title, Detail = detail };
        if (status == StatusCodes.Status503ServiceUnavailable && http.Items.TryGetValue(SubmittingJob, out var submitting))
        {
            NameSubmitted(problem, submitting);
        }

        http.Response.StatusCode = status;
        await WriteAsync(http, problems, problem, exception);
        return true;
    }

    /// <summary>
    /// Writes <paramref name="problem"/> as problem+json, also to a caller that accepts only what the
    /// endpoint exports (an NDJSON export), for which the problem service has no writer: the problem
    /// all the same, not an empty body (nor, with its WriteAsync, an exception).
    /// </summary>
    public static async Task WriteAsync(HttpContext http, IProblemDetailsService problems, ProblemDetails problem, Exception? exception = null)
    {
        if (!await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = http, Exception = exception, ProblemDetails = problem }))
        {
            await http.Response.WriteAsJsonAsync(problem, options: null, contentType: "application/problem+json", CancellationToken.None);
        }
    }

    /// <summary>A field the body does not have: 422 naming it, as the submit bodies answer.</summary>
    private async ValueTask<bool> UnknownFieldAsync(HttpContext http, Exception exception, string field)
    {
        http.Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            Exception = exception,
            ProblemDetails = new HttpValidationProblemDetails(new Dictionary<string, string[]>
            {
                [field] = [$"Unknown field '{field}'; GET /openapi/v1.json describes this endpoint's body."],
            })
            {
                Status = StatusCodes.Status422UnprocessableEntity,
                Title = "The request is invalid",
                Type = "https://tools.ietf.org/html/rfc4918#section-11.2",
            },
        });
    }

    private static void NameSubmitted(ProblemDetails problem, object? submitting)
    {
        switch (submitting)
        {
            case Guid jobId:
                problem.Detail = $"A store the API depends on did not answer, and job {jobId} may or may not have been stored: GET /v1/jobs/{jobId} says "
                    + $"(404 once the store answers: it was not), or retry in {RetryAfterSeconds} s with the same Idempotency-Key.";
                problem.Extensions["jobId"] = jobId;
                break;
            case IReadOnlyList<Guid> jobIds:
                problem.Detail = $"A store the API depends on did not answer, and any of these {jobIds.Count} jobs (jobIds, in the order submitted) may or may not "
                    + $"have been stored: GET /v1/jobs/{{id}} says for each (404 once the store answers: it was not), or retry in {RetryAfterSeconds} s "
                    + "with the same Idempotency-Key, which completes the same set without duplicates.";
                problem.Extensions["jobIds"] = jobIds;
                break;
        }
    }

    /// <summary>
    /// The framework's reason, with the JSON reader's own words when the body was the fault; a
    /// parameter it could not bind is named in the caller's terms, not in C#'s
    /// (<c>Failed to bind parameter "Nullable&lt;int&gt; limit" from "abc".</c> → <c>limit must be a whole number, not 'abc'.</c>).
    /// </summary>
    internal static string Describe(BadHttpRequestException bad)
    {
        if (BindFailure().Match(bad.Message) is { Success: true } failure)
        {
            var value = failure.Groups["value"].Value;
            return $"{failure.Groups["name"].Value} must be {KindOf(failure.Groups["type"].Value)}, not '{Commands.Shown.Cut(value)}'.";
        }

        if (bad.InnerException is System.Text.Json.JsonException json)
        {
            // A value of the wrong type is named by its path, not by the .NET type it missed.
            return json.Message.Contains("could not be converted to", StringComparison.Ordinal)
                ? $"{Field(json.Path)} is not of the type this endpoint reads (GET /openapi/v1.json describes it)."
                : $"The body is not valid JSON: {json.Message}";
        }

        return bad.Message.StartsWith("Implicit body inferred", StringComparison.Ordinal)
            || (bad.Message.StartsWith("Required parameter", StringComparison.Ordinal) && bad.Message.Contains("from body", StringComparison.Ordinal))
            ? "This endpoint reads a JSON body; none was sent."
            : bad.Message;
    }

    private static string Field(string? path) => path is null or "$" ? "The body" : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path;

    private static string KindOf(string type) => (type.StartsWith("Nullable<", StringComparison.Ordinal) ? type["Nullable<".Length..^1] : type) switch
    {
        "int" or "long" or "Int32" or "Int64" => "a whole number",
        "double" or "float" or "decimal" or "Double" or "Single" or "Decimal" => "a number",
        "bool" or "Boolean" => "true or false",
        "Guid" => "an id (a GUID)",
        "DateTimeOffset" or "DateTime" => "a timestamp",
        _ => "a value of its form",
    };

    [System.Text.RegularExpressions.GeneratedRegex("""^The JSON property '(?<name>[^']{0,200})' could not be mapped""")]
    private static partial System.Text.RegularExpressions.Regex Unmapped();

    [System.Text.RegularExpressions.GeneratedRegex("""^Failed to bind parameter "(?<type>[^"]+) (?<name>[^" ]+)" from "(?<value>.*)"\.$""", System.Text.RegularExpressions.RegexOptions.Singleline)]
    private static partial System.Text.RegularExpressions.Regex BindFailure();

    [LoggerMessage(LogLevel.Warning, "{Method} {Path} answered 503: {Exception}: {Reason}")]
    private static partial void LogUnavailable(ILogger logger, string method, string path, string exception, string reason);
}
