using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using CqrsInference.Commands;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Messaging;

/// <summary>
/// What one background role (a recorder, the sealer, the webhook dispatcher, a processor's model,
/// …) knows of the servers it works against, so that an outage is logged once when it begins (the
/// first failure, with its reason) and once when it ends (the first success after it, with how
/// long the role could not work), never once per retry. The retries themselves are
/// <see cref="Retries"/>' (Polly); their <c>onRetry</c> calls <see cref="Failed"/>, and the role's
/// next piece of work done calls <see cref="Worked"/>.
/// </summary>
/// <remarks>
/// "Unavailable" is measured from the role's first failure to its next success: a role that has
/// nothing to do during an outage (and so tries nothing) is not counted as down.
/// </remarks>
public sealed partial class OutageWatch(string role, ILogger logger, TimeProvider clock)
{
    private readonly Lock _gate = new();
    private DateTimeOffset? _failingSince;
    private DateTimeOffset? _lastWorked;
    private TimeSpan _longest;

    public string Role => role;

    /// <summary>When the current outage began (the first failure since the last success), or null while the role works.</summary>
    public DateTimeOffset? FailingSince
    {
        get
        {
            lock (_gate)
            {
                return _failingSince;
            }
        }
    }

    /// <summary>When the role last did a piece of work (or null when it has not yet).</summary>
    public DateTimeOffset? LastWorked
    {
        get
        {
            lock (_gate)
            {
                return _lastWorked;
            }
        }
    }

    /// <summary>The longest outage the role has come through since start (the current one counts up to now).</summary>
    public TimeSpan LongestOutage
    {
        get
        {
            lock (_gate)
            {
                var current = _failingSince is { } since ? clock.GetUtcNow() - since : TimeSpan.Zero;
                return current > _longest ? current : _longest;
            }
        }
    }

    /// <summary>A try failed: logged (a warning) only when it begins an outage. Returns whether it did.</summary>
    public bool Failed(Exception failure) => Failed(failure.GetBaseException().Message);

    /// <inheritdoc cref="Failed(Exception)"/>
    public bool Failed(string reason)
    {
        lock (_gate)
        {
            if (_failingSince is not null)
            {
                return false;
            }

            _failingSince = clock.GetUtcNow();
        }

        LogUnavailable(logger, role, reason);
        return true;
    }

    /// <summary>A piece of work was done: ends the outage if there was one (logged once, with its length).</summary>
    public void Worked()
    {
        TimeSpan? lasted = null;
        lock (_gate)
        {
            var now = clock.GetUtcNow();
            _lastWorked = now;
            if (_failingSince is { } since)
            {
                lasted = now - since;
                _longest = lasted.Value > _longest ? lasted.Value : _longest;
                _failingSince = null;
            }
        }

        if (lasted is { } length)
        {
            LogAvailable(logger, role, length.TotalSeconds);
        }
    }

    [LoggerMessage(LogLevel.Warning, "{Role} cannot work (a server it needs is away or failing); retrying with backoff until it can: {Reason}")]
    private static partial void LogUnavailable(ILogger logger, string role, string reason);

    [LoggerMessage(LogLevel.Information, "{Role} works again after {Seconds:F1} s")]
    private static partial void LogAvailable(ILogger logger, string role, double seconds);
}

/// <summary>
/// Every role's <see cref="OutageWatch"/> in this process, one per role name, reported at
/// <c>/metrics</c>: <c>cqrsi_role_unavailable</c> (1 while a role's outage lasts) and
/// <c>cqrsi_role_longest_outage_seconds</c> (the longest it came through since start).
/// </summary>
public sealed class OutageWatches
{
    private readonly ConcurrentDictionary<string, OutageWatch> _watches = new(StringComparer.Ordinal);
    private readonly ILoggerFactory _loggers;
    private readonly TimeProvider _clock;

    public OutageWatches(ILoggerFactory loggers, TimeProvider clock)
    {
        (_loggers, _clock) = (loggers, clock);
        Telemetry.Meter.CreateObservableGauge("cqrsi.role.unavailable", () => _watches.Values.Select(w =>
            new Measurement<int>(w.FailingSince is null ? 0 : 1, new KeyValuePair<string, object?>("role", w.Role))), "{role}",
            "1 while a background role cannot work (from its first failure to its next success)");
        Telemetry.Meter.CreateObservableGauge("cqrsi.role.longest_outage", () => _watches.Values.Select(w =>
            new Measurement<double>(w.LongestOutage.TotalSeconds, new KeyValuePair<string, object?>("role", w.Role))), "s",
            "The longest time a background role could not work since its process started");
    }

    /// <summary>A process of its own (a test, a tool): watches that log nowhere.</summary>
    public static OutageWatches Detached() => new(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, TimeProvider.System);

    /// <summary>The watch of <paramref name="role"/>, made on first use.</summary>
    public OutageWatch For(string role) =>
        _watches.GetOrAdd(role, r => new OutageWatch(r, _loggers.CreateLogger("CqrsInference.Outages"), _clock));

    public IReadOnlyCollection<OutageWatch> All => [.. _watches.Values];
}
