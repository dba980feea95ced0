using CqrsInference.Commands.Jobs;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;

namespace CqrsInference.Messaging;

/// <summary>
/// Idempotency keys claimed atomically: the first request to use a key (its job's id, derived from
/// the tenant and the key) creates the entry with its request's digest; any later one reads it. Two
/// requests at once with one key and different bodies therefore cannot both be accepted: the second
/// is a conflict, whatever the timing. Entries live a day (<see cref="Retention"/>); after that the
/// recorded job status answers.
/// </summary>
public sealed class IdempotencyClaims(INatsJSContext js) : IIdempotencyClaims
{
    public const string Bucket = "cqrsi_idempotency";
    public static readonly TimeSpan Retention = TimeSpan.FromDays(1);
    private INatsKVStore? _store;

    public static Task EnsureBucketAsync(INatsJSContext js, CancellationToken ct, int replicas = 1) =>
        KvBuckets.EnsureAsync(js, Bucket, "Idempotency keys in use: the job id each derives and the digest of the request that first used it.", Retention, replicas, ct);

    public async Task<string> ClaimAsync(Guid jobId, string digest, CancellationToken ct)
    {
        var store = _store ??= await new NatsKVContext(js).GetStoreAsync(Bucket, ct);
        return (await KvBuckets.CreateOrReadAsync(store, jobId.ToString("N"), digest, ct)).Value;
    }

    public async Task<string?> FindAsync(Guid jobId, CancellationToken ct)
    {
        var store = _store ??= await new NatsKVContext(js).GetStoreAsync(Bucket, ct);
        return await store.TryGetEntryAsync<string>(jobId.ToString("N"), cancellationToken: ct) is { Success: true, Value.Value: { } digest } ? digest : null;
    }
}
