using System.Runtime.CompilerServices;
using Marten;

namespace CqrsInference.Api.Security;

/// <summary>
/// A Server-Sent Events stream outlives the request that opened it, so its key is checked again
/// before each event it sends, not only when it opens, and a key revoked since ends the stream. The
/// key cache answers from memory (<see cref="VerifiedKeys"/>: the store is asked at most every
/// <c>Api:KeyCache:FreshFor</c> per key), so a key revoked on this instance sends nothing more at
/// once, and on another within <c>FreshFor</c>. The operator's configured key and anonymous callers
/// have no stored key to revoke.
/// </summary>
internal sealed class StreamKeys(VerifiedKeys keys, IServiceProvider services)
{
    public async IAsyncEnumerable<T> WhileValidAsync<T>(ApiCaller caller, IAsyncEnumerable<T> events, [EnumeratorCancellation] CancellationToken ct)
    {
        var store = caller.KeyId is ApiKeyAuthentication.ConfiguredKeyId or ApiKeyAuthentication.AnonymousKeyId ? null : services.GetService<IDocumentStore>();
        await foreach (var item in events.WithCancellation(ct))
        {
            if (store is not null && await keys.FindAsync(caller.KeyId, store, ct) is null)
            {
                yield break;
            }

            yield return item;
        }
    }
}
