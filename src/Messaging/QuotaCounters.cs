using System.Globalization;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;

namespace CqrsInference.Messaging;

/// <summary>
/// Daily submit counters per tenant, in a JetStream key-value bucket: a submit takes one unit with a
/// compare-and-set on the key's revision, so API instances share one count and two concurrent submits
/// cannot both take the last unit. Counters expire two days after their last change.
/// </summary>
public sealed class QuotaCounters(INatsJSContext js)
{
    public const string Bucket = "cqrsi_quota";
    private INatsKVStore? _store;

    public static Task EnsureBucketAsync(INatsJSContext js, CancellationToken ct, int replicas = 1) =>
        KvBuckets.EnsureAsync(js, Bucket, "Jobs each tenant submitted per UTC day (the daily quota).", TimeSpan.FromDays(2), replicas, ct);

    /// <summary>Takes <paramref name="units"/> of <paramref name="tenant"/>'s count for <paramref name="day"/>; false (nothing taken) when that would pass <paramref name="limit"/>.</summary>
    public async Task<bool> TryTakeAsync(string tenant, DateOnly day, long limit, int units, CancellationToken ct)
    {
        var store = _store ??= await new NatsKVContext(js).GetStoreAsync(Bucket, ct);
        var key = $"{tenant}.{day.ToString("yyyyMMdd", CultureInfo.InvariantCulture)}";
        var taken = await Contended.ExecuteAsync(
            async token =>
            {
                var (count, revision) = await ReadAsync(store, key, token);
                if (count + units > limit)
                {
                    return false;
                }

                var next = (count + units).ToString(CultureInfo.InvariantCulture);
                var written = revision == 0
                    ? await store.TryCreateAsync(key, next, cancellationToken: token)
                    : await store.TryUpdateAsync(key, next, revision, cancellationToken: token);
                return written.Success ? true : (bool?)null;
            },
            ct);
        return taken ?? throw new TimeoutException($"The quota counter of tenant {tenant} stayed contended.");
    }

    /// <summary>Null: another submit changed the counter between the read and the write; the next try reads it again.</summary>
    private static readonly Polly.ResiliencePipeline<bool?> Contended = Retries.Contended<bool?>(52, taken => taken is null);

    private static async Task<(long Count, ulong Revision)> ReadAsync(INatsKVStore store, string key, CancellationToken ct)
    {
        var entry = await store.TryGetEntryAsync<string>(key, cancellationToken: ct);
        return entry.Success ? (long.Parse(entry.Value.Value!, CultureInfo.InvariantCulture), entry.Value.Revision) : (0, 0);
    }
}
