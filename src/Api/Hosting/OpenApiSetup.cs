using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Scalar.AspNetCore;

namespace CqrsInference.Api.Hosting;

/// <summary>The OpenAPI document (<c>/openapi/v1.json</c>) with worked examples, and its Scalar UI at <c>/docs</c>.</summary>
internal static class OpenApiSetup
{
    public const string SubmitExample = """
        {"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],"metadata":{"customer":"c-42"}}
        """;

    public static IServiceCollection AddApiDocumentation(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "CqrsInference API";
                document.Info.Description = "Submit inference jobs, follow them, audit them. Errors on /v1 are RFC 7807 problem details; "
                    + "send 'Authorization: Bearer <key>'. Tensors use the Open Inference Protocol (KServe v2) layout, and /v2 speaks "
                    + "that protocol (synchronous inference, model metadata, health), with its errors as {\"error\": \"...\"}.";
                return Task.CompletedTask;
            });
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
        });

    public static WebApplication MapApiDocumentation(this WebApplication app)
    {
        app.MapOpenApi().AllowAnonymous();
        app.MapScalarApiReference("/docs", options => options.WithTitle("CqrsInference API")).AllowAnonymous();
        return app;
    }
}
