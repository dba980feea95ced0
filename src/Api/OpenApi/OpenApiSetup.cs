using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using CqrsInference.Api.Jobs.Submitting;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Commands.Jobs.Webhooks;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace CqrsInference.Api.OpenApi;

/// <summary>
/// The OpenAPI 3.1 document (<c>/openapi/v1.json</c>) and its Scalar UI at <c>/docs</c>: typed
/// schemas, every answer with its problem details, headers and content types
/// (<see cref="ContractTransformer"/>), the bearer scheme, and worked examples. A copy is kept in
/// <c>docs/openapi/v1.json</c>, from which the typed client (<c>src/Client</c>) is generated at build.
/// </summary>
internal static class OpenApiSetup
{
    public const string SubmitExample = """
        {"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],"metadata":{"customer":"c-42"}}
        """;

    public static IServiceCollection AddApiDocumentation(this IServiceCollection services)
    {
        // Numbers are numbers: the API writes them as JSON numbers and reads none from strings, so
        // the document says "integer", not "integer or a string of digits".
        // Bodies the framework binds (keys, backtests, failover) are read as strictly as the submit
        // bodies: a property given twice is refused, not taken last; a field the request does not
        // have is refused by the request types themselves ([JsonUnmappedMemberHandling], so that
        // only they, not the answers, say "additionalProperties": false in the document).
        services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
            json.SerializerOptions.AllowDuplicateProperties = false;
        });
        return services.AddOpenApi(options =>
        {
            // Any JSON (a tensor's elements, an event's data) is "any value" in place, not a component
            // of its own: generators would make an empty class of it that no value fits.
            options.CreateSchemaReferenceId = type => type.Type == typeof(JsonElement) ? null : OpenApiOptions.CreateDefaultSchemaReferenceId(type);
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "CqrsInference API";
                document.Info.Version = "v1";
                document.Info.Description = "Submit inference jobs, follow them, audit them. Errors on /v1 are RFC 9457 problem details "
                    + "(application/problem+json; 422 names every faulty field under 'errors'). Send 'Authorization: Bearer <key>'; "
                    + "where anonymous callers are allowed (Api:AllowAnonymous, on under ./run.sh), callers without a key may submit and read for tenant 'default'. "
                    + "Tensors use the Open Inference Protocol (KServe v2) layout, and /v2 speaks that protocol "
                    + "(synchronous inference, model metadata, health), with its errors as {\"error\": \"...\"}.";
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[ContractTransformer.SchemeName] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    BearerFormat = "cqrsi_<id>_<secret>",
                    Description = "An API key (POST /v1/admin/keys) or the operator's CQRSI_API_KEY. Each operation lists the roles that admit a caller.",
                };
                return Task.CompletedTask;
            });
            options.AddOperationTransformer<ContractTransformer>();
            options.AddOperationTransformer((operation, context, _) =>
            {
                if (context.Description.ActionDescriptor.EndpointMetadata.OfType<IEndpointNameMetadata>().FirstOrDefault()?.EndpointName == "SubmitJob"
                    && operation.RequestBody?.Content is { } content)
                {
                    foreach (var media in content.Values)
                    {
                        media.Example = JsonNode.Parse(SubmitExample);
                    }
                }

                return Task.CompletedTask;
            });
            options.AddSchemaTransformer((schema, context, _) =>
            {
                AllowedValues(schema, context.JsonTypeInfo.Type);
                return Task.CompletedTask;
            });
        });
    }

    /// <summary>The allowed values of the submit's choice fields, from the lists the rules check against.</summary>
    private static void AllowedValues(OpenApiSchema schema, Type type)
    {
        var choices = type == typeof(SubmitJobRequest)
            ? new Dictionary<string, IReadOnlyList<string>> { ["priority"] = Priorities.All, ["mode"] = JobRequestParser.Modes, ["webhookEvents"] = WebhookEvents.All }
            : type == typeof(InputTensor) ? new Dictionary<string, IReadOnlyList<string>> { ["datatype"] = TensorElements.Datatypes } : [];
        foreach (var (name, values) in choices)
        {
            if (schema.Properties is not null && schema.Properties.TryGetValue(name, out var found) && found is OpenApiSchema field)
            {
                // A list's values are its items'.
                var property = field.Items as OpenApiSchema ?? field;
                // A field that may be null or absent lists null among its values (JSON null is a null node).
                var nullable = property.Type?.HasFlag(JsonSchemaType.Null) == true;
                property.Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v)), .. nullable ? [null!] : Array.Empty<JsonNode>()];
            }
        }
    }

    public static WebApplication MapApiDocumentation(this WebApplication app)
    {
        app.MapOpenApi().AllowAnonymous();
        app.MapScalarApiReference("/docs", options => options.WithTitle("CqrsInference API")).AllowAnonymous();
        return app;
    }
}
