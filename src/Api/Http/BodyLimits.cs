using System.Buffers;
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

    /// <summary>
    /// 415 for a body the API would misread, else null: one with a <c>Content-Encoding</c> (bodies are
    /// read as sent, never decompressed), or declared in a charset other than UTF-8 (JSON is UTF-8,
    /// RFC 8259).
    /// </summary>
    public static Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult? RefuseEncoding(HttpRequest request)
    {
        var encoding = request.Headers.ContentEncoding.ToString();
        if (encoding.Length > 0 && !encoding.Equals("identity", StringComparison.OrdinalIgnoreCase))
        {
            return Problems.UnsupportedMediaType(request.ContentType, $"the body uncompressed (no Content-Encoding), not Content-Encoding '{encoding}'", quoteContentType: false);
        }

        var charset = Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            ? Microsoft.Net.Http.Headers.HeaderUtilities.RemoveQuotes(mediaType.Charset).Value
            : null;
        return charset is { Length: > 0 } && !charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) && !charset.Equals("utf8", StringComparison.OrdinalIgnoreCase)
            ? Problems.UnsupportedMediaType(request.ContentType, $"the body in UTF-8 (charset=utf-8, or none), not charset '{charset}'", quoteContentType: false)
            : null;
    }

    /// <summary>
    /// Reads a request's whole body, at most <paramref name="maxBytes"/>; null when it is larger. A
    /// body with a length is read into one array of that length (the server holds the client to it);
    /// one without (chunked) through a pooled buffer. An 80 KB array per request used to be two
    /// thirds of what the API allocated under load (docs/BENCHMARKS.md).
    /// </summary>
    public static async Task<byte[]?> ReadBodyAsync(HttpRequest request, long maxBytes, CancellationToken ct)
    {
        if (request.ContentLength is { } length)
        {
            if (length > maxBytes || length > Array.MaxLength)
            {
                return null;
            }

            var body = GC.AllocateUninitializedArray<byte>((int)length);
            await request.Body.ReadExactlyAsync(body, ct);
            return body;
        }

        var chunk = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            using var buffer = new MemoryStream();
            int read;
            while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
            {
                if (buffer.Length + read > maxBytes)
                {
                    return null;
                }

                await buffer.WriteAsync(chunk.AsMemory(0, read), ct);
            }

            return buffer.ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }
}
