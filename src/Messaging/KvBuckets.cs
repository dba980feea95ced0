using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;

namespace CqrsInference.Messaging;

/// <summary>What the key-value buckets (claims, idempotency keys, quota counters) share.</summary>
internal static class KvBuckets
{
    /// <summary>Creates or updates a file-backed bucket whose entries expire after <paramref name="maxAge"/>; safe on every start.</summary>
    public static async Task EnsureAsync(INatsJSContext js, string bucket, string description, TimeSpan maxAge, int replicas, CancellationToken ct) =>
        await new NatsKVContext(js).CreateOrUpdateStoreAsync(
            new NatsKVConfig(bucket)
            {
                Description = description,
                MaxAge = maxAge,
                Storage = NatsKVStorageType.File,
                NumberOfReplicas = replicas,
            },
            ct);

    /// <summary>
    /// The first value ever put under <paramref name="key"/>: <paramref name="value"/> if this call
    /// created it (the server lets exactly one create win), else the value that won. An entry
    /// that expired or was deleted between the create and the read is created again.
    /// </summary>
    public static async Task<(bool Created, string Value)> CreateOrReadAsync(INatsKVStore store, string key, string value, CancellationToken ct)
    {
        var claim = await CreateOrRead.ExecuteAsync(
            async token => (await store.TryCreateAsync(key, value, cancellationToken: token)).Success
                ? (true, value)
                : await store.TryGetEntryAsync<string>(key, cancellationToken: token) is { Success: true, Value.Value: { } first } ? (false, first) : ((bool, string)?)null,
            ct);
        return claim ?? throw new TimeoutException($"Key {key} of bucket {store.Bucket} could be neither created nor read.");
    }

    /// <summary>Null: the create lost and the winner's entry was gone by the read (expired or deleted); the next try creates it.</summary>
    private static readonly Polly.ResiliencePipeline<(bool, string)?> CreateOrRead = Retries.Contended<(bool, string)?>(7, claim => claim is null);
}
