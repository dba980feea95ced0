using Microsoft.OpenApi;

namespace CqrsInference.Api.OpenApi;

/// <summary>A problem details answer an endpoint gives for its own reasons (404, 409, 422, …), and why.</summary>
internal sealed record ProblemResponse(int Status, string Description);

/// <summary>A request header an endpoint reads itself rather than binding it as a parameter.</summary>
internal sealed record RequestHeader(string Name, string Description);

/// <summary>A query parameter an endpoint reads from the query itself (not bound to a handler argument), for the OpenAPI document.</summary>
internal sealed record QueryParameter(string Name, string Description, JsonSchemaType Type = JsonSchemaType.String);

/// <summary>A header an answer of this status carries.</summary>
internal sealed record ResponseHeader(int Status, string Name, string Description);

/// <summary>
/// A representation of an answer that is text rather than JSON: CSV or NDJSON chosen with
/// <c>Accept</c>, or a stream of Server-Sent Events, described in words.
/// </summary>
internal sealed record TextContent(int Status, string ContentType, string Description);

/// <summary>
/// A request body that is text rather than JSON (a JSONL upload), for the OpenAPI document only: unlike
/// <c>Accepts</c>, it does not make the route answer 415 before the caller's roles are checked (a
/// caller without the role gets its 403 whatever it sent); the endpoint checks the content type itself.
/// </summary>
internal sealed record TextRequest(IReadOnlyList<string> ContentTypes);

/// <summary>
/// What an endpoint declares of its HTTP contract beyond its parameters and typed results, for the
/// OpenAPI document (<see cref="ContractTransformer"/> writes it there). What every endpoint shares
/// (400 for a request that cannot be bound, 401 and 403 from its policy, 503 for a store out of
/// reach) is derived there, not declared here.
/// </summary>
internal static class ApiContract
{
    public const string IdempotencyKey = "Idempotency-Key";
    public const string Csv = "text/csv";
    public const string NdJson = "application/x-ndjson";
    public const string EventStream = "text/event-stream";

    public const string IdempotencyKeyDescription =
        "Makes a retried submit return the job(s) of the first (at most 256 characters); a different body with the same key is 409.";

    /// <summary>Declares problem answers of this endpoint's own (422 is described as a validation problem with the fields).</summary>
    public static TBuilder WithProblems<TBuilder>(this TBuilder builder, params (int Status, string Description)[] problems)
        where TBuilder : IEndpointConventionBuilder
    {
        foreach (var (status, description) in problems)
        {
            builder.WithMetadata(new ProblemResponse(status, description));
        }

        return builder;
    }

    public static TBuilder WithRequestHeader<TBuilder>(this TBuilder builder, string name, string description)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new RequestHeader(name, description));

    public static TBuilder WithQueryParameter<TBuilder>(this TBuilder builder, string name, string description, JsonSchemaType type = JsonSchemaType.String)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new QueryParameter(name, description, type));

    public static TBuilder WithResponseHeader<TBuilder>(this TBuilder builder, int status, string name, string description)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ResponseHeader(status, name, description));

    /// <summary>Declares a text representation of an answer (CSV, NDJSON, SSE) beside or instead of its JSON.</summary>
    public static TBuilder ProducesText<TBuilder>(this TBuilder builder, int status, string contentType, string description)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new TextContent(status, contentType, description));

    /// <summary>Declares a text request body (<see cref="TextRequest"/>).</summary>
    public static TBuilder AcceptsText<TBuilder>(this TBuilder builder, params IReadOnlyList<string> contentTypes)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new TextRequest(contentTypes));

    /// <summary>CSV beside the JSON rows, with <c>Accept: text/csv</c>.</summary>
    public static TBuilder ProducesCsv<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.ProducesText(StatusCodes.Status200OK, Csv,
            "With 'Accept: text/csv': the same rows as CSV (RFC 4180), a header row of the JSON field names, invariant culture.");
}
