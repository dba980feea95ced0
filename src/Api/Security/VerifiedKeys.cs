using System.Collections.Concurrent;
using Marten;

namespace CqrsInference.Api.Security;

/// <summary>
/// The stored keys as PostgreSQL last confirmed them, so that a request does not wait on the store
/// when it need not:
/// <list type="bullet">
/// <item>a key confirmed within <c>Api:KeyCache:FreshFor</c> (default 5 s; 0: ask on every request)
/// is taken as it was: one look-up per key per few seconds, not one per request. A key revoked on
/// this instance stops at once; revoked on another instance, within that time;</item>
/// <item>otherwise the store is asked, once at a time per key (requests that arrive meanwhile wait
/// for the same answer). A key the store confirmed within <c>Api:KeyCache:UsableFor</c> (default
/// 2 minutes) waits for it at most <c>Api:KeyCache:AskWithin</c> (default 2 s), and is taken as
/// last confirmed when the store is out of reach or does not answer in that time: known keys keep
/// submitting while PostgreSQL is down or hangs (a submit needs only NATS), and a key revoked just
/// before works at most <c>UsableFor</c> after it was last confirmed. An unknown key waits for the
/// store's answer.</item>
/// </list>
/// One entry per key ever confirmed (keys are few: an admin creates them).
/// </summary>
internal sealed partial class VerifiedKeys(TimeProvider clock, KeyCacheOptions options, ILogger<VerifiedKeys> logger)
{
    private readonly ConcurrentDictionary<string, (ApiKey Key, DateTimeOffset ConfirmedAt)> _keys = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Lookup> _asking = new(StringComparer.Ordinal);

    public TimeSpan UsableFor => options.UsableFor;

    public TimeSpan FreshFor => options.FreshFor;

    public TimeSpan AskWithin => options.AskWithin;

    /// <summary>The valid key with this id; null when the store says it is unknown or revoked.</summary>
    public async Task<ApiKey?> FindAsync(string id, IDocumentStore store, CancellationToken ct)
    {
        if (_keys.TryGetValue(id, out var entry) && clock.GetUtcNow() - entry.ConfirmedAt < FreshFor)
        {
            return entry.Key;
        }

        var lookup = Asking(id, store);
        if (WhileTheStoreIsAway(id) is not { } known)
        {
            return await lookup.Answer.WaitAsync(ct);
        }

        try
        {
            var left = AskWithin - clock.GetElapsedTime(lookup.StartedAt);
            return lookup.Answer.IsCompleted || left > TimeSpan.Zero
                ? await lookup.Answer.WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero, clock, ct)
                : throw new TimeoutException();
        }
        catch (Exception e) when (e is TimeoutException || Projections.Outages.IsOutage(e))
        {
            LogTakenAsConfirmed(logger, id, e is TimeoutException ? $"no answer within {AskWithin.TotalSeconds:0.#} s" : e.Message);
            return known;
        }
    }

    /// <summary>The store has just said this key is unknown or revoked (or this instance revoked it).</summary>
    public void Refused(string id) => _keys.TryRemove(id, out _);

    private void Confirmed(ApiKey key) => _keys[key.Id] = (key, clock.GetUtcNow());

    /// <summary>The key as last confirmed, if that was recent enough to stand in for the store.</summary>
    private ApiKey? WhileTheStoreIsAway(string id) =>
        _keys.TryGetValue(id, out var entry) && clock.GetUtcNow() - entry.ConfirmedAt <= UsableFor ? entry.Key : null;

    /// <summary>The look-up of this key under way, or a new one: one at a time per key, not tied to any one request.</summary>
    private Lookup Asking(string id, IDocumentStore store)
    {
        lock (_asking)
        {
            if (!_asking.TryGetValue(id, out var lookup))
            {
                lookup = new Lookup(clock.GetTimestamp());
                _asking[id] = lookup;
                lookup.Answer = LookUpAsync(id, store, lookup);
            }

            return lookup;
        }
    }

    private async Task<ApiKey?> LookUpAsync(string id, IDocumentStore store, Lookup lookup)
    {
        await Task.Yield();
        try
        {
            await using var session = store.QuerySession();
            var stored = await session.LoadAsync<ApiKey>(id, CancellationToken.None);
            if (stored is { RevokedAt: null })
            {
                Confirmed(stored);
                return stored;
            }

            Refused(id);
            return null;
        }
        finally
        {
            lock (_asking)
            {
                if (_asking.TryGetValue(id, out var current) && current == lookup)
                {
                    _asking.Remove(id);
                }
            }
        }
    }

    private sealed class Lookup(long startedAt)
    {
        public long StartedAt { get; } = startedAt;

        public Task<ApiKey?> Answer { get; set; } = null!;
    }

    // Debug: during an outage this is every request of a known key; the outage itself is logged once by the roles' outage watches.
    [LoggerMessage(LogLevel.Debug, "API key {KeyId} taken as PostgreSQL last confirmed it: {Reason}")]
    private static partial void LogTakenAsConfirmed(ILogger logger, string keyId, string reason);
}

/// <summary>
/// <c>Api</c>: its own key, whether callers without a key are let in (<see cref="ApiKeyAuthentication"/>;
/// unset, only while no <c>CQRSI_API_KEY</c> is set). Read once, at start: a value that is not a
/// boolean stops the start, as a misspelt key under <c>Api</c> does, instead of failing every request.
/// Its subsections are settings classes of their own, each checked where its role registers it.
/// </summary>
internal sealed class ApiOptions
{
    public bool? AllowAnonymous { get; set; }

    [Hosting.CheckedApart]
    public Hosting.RateLimitOptions? RateLimit { get; set; }

    [Hosting.CheckedApart]
    public Jobs.Submitting.QuotaOptions? Quota { get; set; }

    [Hosting.CheckedApart]
    public KeyCacheOptions? KeyCache { get; set; }

    [Hosting.CheckedApart]
    public Http.ApiTimeoutOptions? Timeouts { get; set; }

    [Hosting.CheckedApart]
    public Hosting.StreamLimitOptions? Streams { get; set; }
}

/// <summary><c>Api:KeyCache</c>: how long a stored key's confirmation by PostgreSQL is trusted (<see cref="VerifiedKeys"/>).</summary>
internal sealed class KeyCacheOptions
{
    /// <summary>A key confirmed within this long is not looked up again (0: on every request).</summary>
    [System.ComponentModel.DataAnnotations.Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan FreshFor { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>While PostgreSQL is out of reach or slow, a key confirmed within this long still works.</summary>
    [System.ComponentModel.DataAnnotations.Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan UsableFor { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How long a request with such a key waits for PostgreSQL's answer before it is taken as last confirmed.</summary>
    [System.ComponentModel.DataAnnotations.Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan AskWithin { get; set; } = TimeSpan.FromSeconds(2);
}
