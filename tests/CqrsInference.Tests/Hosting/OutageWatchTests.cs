using CqrsInference.Messaging;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace CqrsInference.Tests.Hosting;

/// <summary>A role's outage is logged once when it begins and once when it ends, however many retries it takes (<see cref="OutageWatch"/>).</summary>
public sealed class OutageWatchTests
{
    private readonly FakeTimeProvider _clock = new();
    private readonly Lines _log = new();

    [Fact]
    public void An_outage_of_many_failed_tries_is_logged_once_when_it_begins_and_once_when_it_ends_with_its_length()
    {
        var watch = new OutageWatch("audit sealer", _log, _clock);
        watch.Worked();

        watch.Failed(new TimeoutException("no answer")).ShouldBeTrue();
        for (var i = 0; i < 20; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(1));
            watch.Failed(new TimeoutException($"no answer {i}")).ShouldBeFalse();
        }

        watch.FailingSince.ShouldNotBeNull();
        watch.Worked();
        watch.Worked();

        _log.Written.Count.ShouldBe(2);
        _log.Written[0].ShouldBe((LogLevel.Warning, "audit sealer cannot work (a server it needs is away or failing); retrying with backoff until it can: no answer"));
        _log.Written[1].ShouldBe((LogLevel.Information, "audit sealer works again after 20.0 s"));
        watch.FailingSince.ShouldBeNull();
        watch.LongestOutage.ShouldBe(TimeSpan.FromSeconds(20));
    }

    [Fact]
    public void The_longest_outage_counts_the_current_one_up_to_now_and_keeps_the_longest_after()
    {
        var watch = new OutageWatch("retention", _log, _clock);
        watch.Failed("down");
        _clock.Advance(TimeSpan.FromSeconds(30));
        watch.LongestOutage.ShouldBe(TimeSpan.FromSeconds(30));
        watch.Worked();

        watch.Failed("down again");
        _clock.Advance(TimeSpan.FromSeconds(5));
        watch.Worked();

        watch.LongestOutage.ShouldBe(TimeSpan.FromSeconds(30));
        _log.Written.Count.ShouldBe(4);
    }

    [Fact]
    public void Every_role_has_one_watch_per_process()
    {
        var watches = OutageWatches.Detached();

        watches.For("webhook dispatcher").ShouldBeSameAs(watches.For("webhook dispatcher"));
        watches.All.Select(w => w.Role).ShouldBe(["webhook dispatcher"]);
    }

    private sealed class Lines : ILogger
    {
        public List<(LogLevel Level, string Message)> Written { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Written.Add((logLevel, formatter(state, exception)));
    }
}
