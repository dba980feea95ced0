using System.Collections.Concurrent;

namespace CqrsInference.Api.Security;

/// <summary>
/// The keys the key store confirmed lately, for when it cannot be asked. Every request still asks
/// the store first (a revocation takes effect at once while PostgreSQL answers); only when the
/// store is out of reach is a key accepted from here, and only if the store confirmed it within
/// <c>Api:KeyCache:UsableFor</c> (default 2 minutes). So during a PostgreSQL outage known keys keep
/// submitting, and a key revoked just before the outage works at most that long after it was last
/// confirmed. One entry per key ever confirmed (keys are few: an admin creates them).
/// </summary>
internal sealed class VerifiedKeys(TimeProvider clock, IConfiguration configuration)
{
    private readonly ConcurrentDictionary<string, (ApiKey Key, DateTimeOffset ConfirmedAt)> _keys = new(StringComparer.Ordinal);

    public TimeSpan UsableFor { get; } = configuration.GetValue<TimeSpan?>("Api:KeyCache:UsableFor") ?? TimeSpan.FromMinutes(2);

    /// <summary>The store has just confirmed this key as valid.</summary>
    public void Confirmed(ApiKey key) => _keys[key.Id] = (key, clock.GetUtcNow());

    /// <summary>The store has just said this key is unknown or revoked.</summary>
    public void Refused(string id) => _keys.TryRemove(id, out _);

    /// <summary>The key as last confirmed, if that was recent enough to stand in for the store.</summary>
    public ApiKey? WhileTheStoreIsAway(string id) =>
        _keys.TryGetValue(id, out var entry) && clock.GetUtcNow() - entry.ConfirmedAt <= UsableFor ? entry.Key : null;
}
