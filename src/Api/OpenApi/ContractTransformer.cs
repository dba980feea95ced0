using System.Globalization;
using CqrsInference.Api.Security;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.ApiExplorer;
using Microsoft.AspNetCore.Mvc.ModelBinding;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace CqrsInference.Api.OpenApi;

/// <summary>
/// Writes each operation's whole HTTP contract into the document: every problem answer it can give
/// (<c>application/problem+json</c>, 422 with its <c>errors</c> by field), the headers of answers and
/// requests, text representations (CSV, NDJSON, SSE), and its security requirement. What every
/// endpoint shares is derived here from what the endpoint is, so it cannot drift:
/// <list type="bullet">
/// <item>400 when the framework binds a body or a typed query or header value that may not parse
/// (<see cref="Http.ApiExceptionHandler"/>);</item>
/// <item>401 (with <c>WWW-Authenticate</c>) unless the endpoint is anonymous, and 403 when its
/// policy needs a role (<see cref="ApiPolicies"/>);</item>
/// <item>503 with <c>Retry-After</c> everywhere: a store out of reach, even while authenticating.</item>
/// </list>
/// </summary>
internal sealed class ContractTransformer : IOpenApiOperationTransformer
{
    public const string SchemeName = "bearer";

    public async Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        var policy = Policy(metadata);
        var v2 = Inference.InferenceApi.IsV2(new PathString("/" + context.Description.RelativePath));
        operation.Responses ??= [];
        foreach (var problem in metadata.OfType<ProblemResponse>())
        {
            operation.Responses[Key(problem.Status)] = await ProblemAsync(problem, v2, context, cancellationToken);
        }

        // What the endpoint says itself of a status (a /v2 readiness 503, say) stands.
        foreach (var problem in Shared(context.Description, policy).Where(p => !operation.Responses.ContainsKey(Key(p.Status))))
        {
            operation.Responses[Key(problem.Status)] = await ProblemAsync(problem, v2, context, cancellationToken);
        }

        foreach (var (status, response) in operation.Responses)
        {
            Headers(status, response, metadata);
            if (response is OpenApiResponse writable)
            {
                foreach (var text in metadata.OfType<TextContent>().Where(t => t.Status.ToString(CultureInfo.InvariantCulture) == status))
                {
                    // Declared text wins over the framework's guess: a ServerSentEventsResult describes the
                    // C# SseItem<T> as if it were JSON, where the wire carries text/event-stream lines.
                    writable.Content ??= new Dictionary<string, OpenApiMediaType>();
                    writable.Content[text.ContentType] = new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Description = text.Description } };
                }
            }
        }

        TextRequestBody(operation, metadata);
        operation.Parameters ??= [];
        foreach (var header in metadata.OfType<RequestHeader>())
        {
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = header.Name, In = ParameterLocation.Header, Description = header.Description, Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            });
        }

        foreach (var query in metadata.OfType<QueryParameter>())
        {
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = query.Name, In = ParameterLocation.Query, Description = query.Description, Schema = new OpenApiSchema { Type = query.Type },
            });
        }

        if (policy is not null)
        {
            // OpenAPI 3.1: for a scheme other than OAuth2 or OpenID Connect the list names the roles the operation needs.
            operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(SchemeName, context.Document)] = [.. ApiPolicies.RolesOf(policy)] }];
        }
    }

    /// <summary>A declared text request body (<see cref="TextRequest"/>): a string in each of its content types.</summary>
    private static void TextRequestBody(OpenApiOperation operation, IList<object> metadata)
    {
        if (metadata.OfType<TextRequest>().FirstOrDefault() is { } text)
        {
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = true,
                Content = text.ContentTypes.ToDictionary(t => t, _ => new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String } }),
            };
        }
    }

    /// <summary>The endpoint's policy; null for an anonymous endpoint.</summary>
    private static string? Policy(IList<object> metadata) =>
        metadata.OfType<IAllowAnonymous>().Any()
            ? null
            : metadata.OfType<IAuthorizeData>().Select(a => a.Policy).LastOrDefault(p => p is not null) ?? ApiPolicies.AnyCaller;

    private static string Key(int status) => status.ToString(CultureInfo.InvariantCulture);

    /// <summary>The problems every endpoint of its kind can answer.</summary>
    private static List<ProblemResponse> Shared(ApiDescription description, string? policy)
    {
        var shared = new List<ProblemResponse>();
        if (MayNotBind(description))
        {
            shared.Add(new(StatusCodes.Status400BadRequest, "The request could not be read: a parameter or the body is not of its type."));
        }

        if (policy is not null)
        {
            shared.Add(new(StatusCodes.Status401Unauthorized, "No valid key: send 'Authorization: Bearer <key>' with a valid, unrevoked API key."));
            if (ApiPolicies.NeedsOf(policy) is { } needs)
            {
                shared.Add(new(StatusCodes.Status403Forbidden, $"The key lacks what this needs: {needs}."));
            }
        }

        shared.Add(new(StatusCodes.Status503ServiceUnavailable, "A store the API depends on did not answer; retry after Retry-After seconds."));
        return shared;
    }

    /// <summary>Whether the framework binds something that may fail to parse (a route value is constrained, so it may not).</summary>
    private static bool MayNotBind(ApiDescription description) =>
        description.ParameterDescriptions.Any(p =>
            p.Source == BindingSource.Body
            || (p.Source == BindingSource.Query || p.Source == BindingSource.Header) && (Nullable.GetUnderlyingType(p.Type) ?? p.Type) != typeof(string));

    /// <summary>A problem answer: problem details on /v1, the protocol's <c>{"error"}</c> as JSON on /v2 (<see cref="Inference.V2ProblemDetailsWriter"/>).</summary>
    private static async Task<OpenApiResponse> ProblemAsync(ProblemResponse problem, bool v2, OpenApiOperationTransformerContext context, CancellationToken ct)
    {
        var type = v2 ? typeof(Inference.V2Error)
            : problem.Status == StatusCodes.Status422UnprocessableEntity ? typeof(HttpValidationProblemDetails) : typeof(ProblemDetails);
        var document = context.Document!;
        if (document.Components?.Schemas?.ContainsKey(type.Name) != true)
        {
            document.AddComponent(type.Name, await context.GetOrCreateSchemaAsync(type, null, ct));
        }

        return new OpenApiResponse
        {
            Description = problem.Description,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                [v2 ? "application/json" : "application/problem+json"] = new() { Schema = new OpenApiSchemaReference(type.Name, document) },
            },
        };
    }

    private static void Headers(string status, IOpenApiResponse response, IList<object> metadata)
    {
        if (response is not OpenApiResponse writable)
        {
            return;
        }

        var headers = metadata.OfType<ResponseHeader>().Where(h => h.Status.ToString(CultureInfo.InvariantCulture) == status)
            .Select(h => (h.Name, h.Description, Type: JsonSchemaType.String)).ToList();
        if (status == "401")
        {
            headers.Add(("WWW-Authenticate", "Bearer; with error=\"invalid_token\" and why when a key was sent but is not valid (RFC 6750).", JsonSchemaType.String));
        }

        if (status == "403")
        {
            headers.Add(("WWW-Authenticate", "Bearer error=\"insufficient_scope\" when the key lacks the role (RFC 6750).", JsonSchemaType.String));
        }

        if (status is "429" or "503")
        {
            headers.Add(("Retry-After", "Seconds to wait before trying again.", JsonSchemaType.Integer));
        }

        foreach (var (name, description, type) in headers)
        {
            writable.Headers ??= new Dictionary<string, IOpenApiHeader>();
            writable.Headers[name] = new OpenApiHeader { Description = description, Schema = new OpenApiSchema { Type = type } };
        }
    }
}
