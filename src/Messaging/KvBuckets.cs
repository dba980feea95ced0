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
        for (var attempt = 0; ; attempt++)
        {
            if ((await store.TryCreateAsync(key, value, cancellationToken: ct)).Success)
            {
                return (true, value);
            }

            var existing = await store.TryGetEntryAsync<string>(key, cancellationToken: ct);
            if (existing.Success && existing.Value.Value is { } first)
            {
                return (false, first);
            }

            if (attempt > 5)
            {
                throw new TimeoutException($"Key {key} of bucket {store.Bucket} could be neither created nor read.");
            }
        }
    }
}
