using CqrsInference.Commands.Jobs;

namespace CqrsInference.Tests.Unit;

public sealed class EventNamesTests
{
    [Theory]
    [InlineData(EventNames.JobSucceeded, true)]
    [InlineData(EventNames.JobFailed, true)]
    [InlineData(EventNames.JobCancelled, true)]
    [InlineData(EventNames.JobExpired, true)]
    [InlineData(EventNames.JobStarted, false)]
    [InlineData(EventNames.JobAttemptFailed, false)]
    [InlineData(EventNames.ProcessorHeartbeat, false)]
    [InlineData(null, false)]
    public void Terminal_events_are_exactly_those_that_end_a_job(string? type, bool terminal) =>
        EventNames.IsTerminal(type).ShouldBe(terminal);

    [Fact]
    public void Every_terminal_event_maps_to_a_terminal_status()
    {
        var statuses = new Dictionary<string, string>
        {
            [EventNames.JobSucceeded] = JobStatuses.Succeeded,
            [EventNames.JobFailed] = JobStatuses.Failed,
            [EventNames.JobCancelled] = JobStatuses.Cancelled,
            [EventNames.JobExpired] = JobStatuses.Expired,
        };

        EventNames.Types.Keys.Where(EventNames.IsTerminal).ShouldBe(statuses.Keys, ignoreOrder: true);
        statuses.Values.ShouldAllBe(s => JobStatuses.IsTerminal(s));
    }
}
