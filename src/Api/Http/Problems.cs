using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Http;

/// <summary>
/// Every problem details answer of the API (RFC 9457, <c>application/problem+json</c>), in one
/// place: endpoints and the command outcomes' mappings build their errors here, so a status code
/// means the same everywhere.
/// </summary>
internal static class Problems
{
    /// <summary>400: the body is not JSON the API can read.</summary>
    public static ProblemHttpResult MalformedJson(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Malformed JSON", detail: detail);

    /// <summary>404; also the answer for another tenant's job: its existence is not disclosed.</summary>
    public static ProblemHttpResult JobNotFound(Guid id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Job not found", detail: $"There is no job {id}.");

    /// <summary>404; also the answer for another tenant's batch.</summary>
    public static ProblemHttpResult BatchNotFound(Guid id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Batch not found", detail: $"There is no batch {id}.");

    /// <summary>403: the caller's key does not reach what it asked for (another tenant's list, say).</summary>
    public static ProblemHttpResult Forbidden(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: detail);

    /// <summary>What a tenant's name must be, as every <c>tenant</c> field and parameter says when refused.</summary>
    public static readonly string TenantRule = $"A tenant is {Commands.Models.Naming.TokenRule}.";

    /// <summary>
    /// What is wrong with a request's <c>tenant=</c> (another tenant's list or feed), or null: not a
    /// tenant's name → 422 naming the rule (it never reaches SQL); another tenant's for a key that is
    /// not the platform operator's → 403, saying that only the operator <paramref name="reads"/>.
    /// </summary>
    public static ProblemHttpResult? OtherTenant(Security.ApiCaller caller, string? tenant, string reads) =>
        tenant is null ? null
        : !Commands.Models.Naming.IsToken(tenant) ? Validation("tenant", TenantRule)
        : !caller.Sees(tenant) ? Forbidden($"Only the operator role {reads}.")
        : null;

    public static ProblemHttpResult NotFound(string title, string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: title, detail: detail);

    /// <summary>409: the job has ended.</summary>
    public static ProblemHttpResult CannotCancel(Guid id, string status) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Job cannot be cancelled",
            detail: $"Job {id} is {status}: it ended before the cancel; only a queued or running job can be cancelled.");

    /// <summary>409: the job is queued, running or succeeded: nothing to retry.</summary>
    public static ProblemHttpResult CannotRetry(Guid id, string status) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Job cannot be retried",
            detail: $"Job {id} is {status}; only a failed, expired or cancelled job can be retried.");

    /// <summary>409: the job was retried as often as a job may be (a state of the job, not a rate: waiting does not help).</summary>
    public static ProblemHttpResult RetryLimitReached(Guid id, int maxRetries) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Retry limit reached",
            detail: $"Job {id} was retried {maxRetries} times, the most a job may be (Retry:MaxRetries); submit it again as a new job.");

    /// <summary>410: what the job would run on again is gone.</summary>
    public static ProblemHttpResult RetryInputGone(Guid id, string reason) =>
        TypedResults.Problem(statusCode: StatusCodes.Status410Gone, title: "Job input gone",
            detail: $"Job {id} cannot be retried: {reason}. Submit it again as a new job.");

    /// <summary>409: the Idempotency-Key submitted another body before.</summary>
    public static ProblemHttpResult IdempotencyConflict(Guid existing, string what = "job") =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Idempotency-Key reused",
            detail: $"This Idempotency-Key already submitted {what} {existing} with a different body.");

    /// <summary>409: a replay or verify is already running; they run one at a time.</summary>
    public static ProblemHttpResult AlreadyRunning(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Already running", detail: detail);

    /// <summary>409: the state of the system does not allow the request (a region takeover refused, say); the title says which state.</summary>
    public static ProblemHttpResult Conflict(string title, string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: title, detail: detail);

    /// <summary>413: the body is larger than the API reads.</summary>
    public static ProblemHttpResult PayloadTooLarge(long maxBytes) =>
        TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Payload too large",
            detail: $"A body may be at most {maxBytes} bytes; use smaller inputs.");

    /// <summary>413: a batch file with more lines than the API takes in one batch.</summary>
    public static ProblemHttpResult TooManyLines(int lines, int maxLines) =>
        TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Too many lines",
            detail: $"A batch file may hold at most {maxLines} lines (Batches:MaxLines); this one holds {lines}: split it.");

    /// <summary>415: the body is not of a type the endpoint takes.</summary>
    public static ProblemHttpResult UnsupportedMediaType(string? contentType, string expected, bool quoteContentType = true) =>
        TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type",
            detail: quoteContentType ? $"Send {expected}, not '{contentType}'." : $"Send {expected}.");

    /// <summary>422: well-formed input that breaks the contract, with every offending field.</summary>
    public static ProblemHttpResult Validation(Dictionary<string, string[]> errors) =>
        TypedResults.Problem(new HttpValidationProblemDetails(errors)
        {
            Status = StatusCodes.Status422UnprocessableEntity,
            Title = "The request is invalid",
            Type = "https://tools.ietf.org/html/rfc4918#section-11.2",
        });

    public static ProblemHttpResult Validation(string field, string message) => Validation(new() { [field] = [message] });

    /// <summary>400: a query parameter that is missing or not of its form (a month that is not <c>YYYY-MM</c>), with every offending one.</summary>
    public static ProblemHttpResult BadQuery(Dictionary<string, string[]> errors) =>
        TypedResults.Problem(new HttpValidationProblemDetails(errors)
        {
            Status = StatusCodes.Status400BadRequest,
            Title = "The query is not valid",
            Detail = string.Join(" ", errors.SelectMany(e => e.Value)),
        });

    /// <summary>429 with Retry-After: the tenant is over its rate or quota.</summary>
    public static ProblemHttpResult TooManyRequests(HttpContext http, string title, string detail, TimeSpan retryAfter)
    {
        RetryAfter(http, retryAfter);
        return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: title, detail: detail);
    }

    /// <summary>503 with Retry-After: the system cannot take or answer this now, and says when to try again.</summary>
    public static ProblemHttpResult Unavailable(HttpContext http, string title, string detail, TimeSpan retryAfter)
    {
        RetryAfter(http, retryAfter);
        return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: title, detail: detail);
    }

    private static void RetryAfter(HttpContext http, TimeSpan after) =>
        http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
}
