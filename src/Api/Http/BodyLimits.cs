using Microsoft.AspNetCore.Http.Features;

namespace CqrsInference.Api.Http;

/// <summary>The largest request body an endpoint reads (metadata; <see cref="BodyLimits.Default"/> when absent).</summary>
internal sealed record BodyLimit(long MaxBytes);

/// <summary>
/// Every endpoint reads a bounded body: one that declares more (submits) says so with
/// <see cref="WithBodyLimit{TBuilder}"/>, every other gets <see cref="Default"/>. A body announced
/// larger is 413 before anything reads it; Kestrel enforces the same bound on bodies without a length.
/// </summary>
internal static class BodyLimits
{
    public const long Default = 64 * 1024;

    public static TBuilder WithBodyLimit<TBuilder>(this TBuilder builder, long maxBytes)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(new BodyLimit(maxBytes));

    public static WebApplication UseBodyLimits(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            var max = context.GetEndpoint()?.Metadata.GetMetadata<BodyLimit>()?.MaxBytes ?? Default;
            if (context.Request.ContentLength > max)
            {
                await Problems.PayloadTooLarge(max).ExecuteAsync(context);
                return;
            }

            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = max;
            }

            await next(context);
        });
        return app;
    }
}
