using System.Net;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>Content without a length: sent chunked, so the server learns its size only by reading.</summary>
internal sealed class UnsizedContent(byte[] bytes) : HttpContent
{
    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(bytes).AsTask();

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
