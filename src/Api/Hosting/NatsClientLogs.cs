using Microsoft.Extensions.Logging;

namespace CqrsInference.Api.Hosting;

/// <summary>
/// The NATS client's own logs, with its failed attempts to connect made calm: it logs each as an
/// error with the socket's stack trace, every second or two while a server is away (or for ever
/// with a mistyped <c>Nats:Url</c>). Here an attempt's cause is one warning line (say, "Connection
/// refused", or a host name that does not resolve), repeated only when the cause changes or after
/// <see cref="RepeatAfter"/>; the other attempts go to Debug. The system's own lines say the rest:
/// one per attempt at start (the topology's), and an outage once when it begins and once when it
/// ends (the roles' <see cref="Messaging.OutageWatch"/>).
/// </summary>
internal sealed class NatsClientLogs(ILoggerFactory loggers, TimeProvider clock) : ILoggerFactory
{
    public static readonly TimeSpan RepeatAfter = TimeSpan.FromMinutes(5);

    private readonly Lock _gate = new();
    private (string Cause, long At)? _lastShown;

    public ILogger CreateLogger(string categoryName) => new Calmer(loggers.CreateLogger(categoryName), this);

    public void AddProvider(ILoggerProvider provider) => loggers.AddProvider(provider);

    /// <summary>The factory is the host's: it is the host's to dispose.</summary>
    public void Dispose()
    {
    }

    /// <summary>Whether a client log entry is a failed connection attempt (its message, as NATS.Client.Core 2.x words it).</summary>
    internal static bool IsFailedAttempt(LogLevel level, string message, Exception? exception) =>
        level >= LogLevel.Warning && exception is not null && message.StartsWith("Fail to connect NATS", StringComparison.Ordinal);

    /// <summary>Whether a failed attempt with this cause is shown (a warning) or only counted at Debug.</summary>
    internal bool Shows(string cause)
    {
        lock (_gate)
        {
            if (_lastShown is { } last && last.Cause == cause && clock.GetElapsedTime(last.At) < RepeatAfter)
            {
                return false;
            }

            _lastShown = (cause, clock.GetTimestamp());
            return true;
        }
    }

    private sealed class Calmer(ILogger logger, NatsClientLogs logs) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => logger.BeginScope(state);

        // The client asks before it formats: what the host's logger would not write costs nothing here either.
        public bool IsEnabled(LogLevel logLevel) => logger.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (exception is not null && logLevel >= LogLevel.Warning && formatter(state, exception) is var message && IsFailedAttempt(logLevel, message, exception))
            {
                var line = $"{message}: {exception!.GetBaseException().Message}";
                var level = logs.Shows(line) ? LogLevel.Warning : LogLevel.Debug;
                if (logger.IsEnabled(level))
                {
                    logger.Log(level, eventId, line, null, (text, _) => text);
                }

                return;
            }

            if (logger.IsEnabled(logLevel))
            {
                logger.Log(logLevel, eventId, state, exception, formatter);
            }
        }
    }
}
