using CqrsInference.Api.Hosting;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using NATS.Client.Core;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// The NATS client's failed attempts to connect, as the application logs them (<see cref="NatsClientLogs"/>):
/// a real client against a port where no server listens, as with a mistyped <c>Nats:Url</c> or a server away.
/// </summary>
public sealed class NatsClientLogsTests
{
    private readonly FakeTimeProvider _clock = new();
    private readonly LogCapture _logs = new();

    [Fact]
    public async Task Failed_attempts_to_connect_are_one_warning_line_with_their_cause_not_an_error_with_a_stack_trace_each()
    {
        using var loggers = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Trace));
        using var logs = new NatsClientLogs(loggers, _clock);
        var url = $"nats://127.0.0.1:{NatsServerProcess.FreePort()}";

        for (var attempt = 0; attempt < 3; attempt++)
        {
            await AttemptAsync(url, logs);
        }

        // The client logged each attempt as an error with its exception (the stack trace on the console).
        _logs.Entries.ShouldNotContain(e => e.Level >= LogLevel.Warning && e.Exception != null);
        var shown = _logs.Entries.Where(e => e.Level == LogLevel.Warning).ShouldHaveSingleItem();
        shown.Message.ShouldStartWith($"Fail to connect NATS {url}");
        shown.Message.ShouldContain("refused");
        _logs.Entries.Count(e => e.Level == LogLevel.Debug && e.Message.StartsWith("Fail to connect NATS", StringComparison.Ordinal)).ShouldBe(2);

        // The same cause is shown again after a while, so that a long outage is not one line at its start.
        _clock.Advance(NatsClientLogs.RepeatAfter);
        await AttemptAsync(url, logs);
        _logs.Entries.Count(e => e.Level == LogLevel.Warning).ShouldBe(2);
    }

    private static async Task AttemptAsync(string url, ILoggerFactory logs)
    {
        await using var nats = new NatsConnection(NatsOpts.Default with { Url = url, LoggerFactory = logs, ConnectTimeout = TimeSpan.FromSeconds(2) });
        await Should.ThrowAsync<NatsException>(async () => await nats.ConnectAsync());
    }
}
