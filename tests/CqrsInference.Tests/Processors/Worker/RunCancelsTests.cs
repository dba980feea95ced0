using CqrsInference.Processors.Worker.Running;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace CqrsInference.Tests.Processors.Worker;

/// <summary>
/// Which runs a cancel heard by a processor aborts (<see cref="RunCancels"/>): the cancelled attempt
/// series' run, now or when it begins within <see cref="RunCancels.Remember"/>; never a retry's run.
/// </summary>
public sealed class RunCancelsTests
{
    private readonly FakeTimeProvider _clock = new(Jobs.Now);

    [Fact]
    public void A_cancel_aborts_the_run_of_its_series_that_is_running_or_begins_within_a_minute()
    {
        var cancels = new RunCancels(_clock);
        var job = Guid.NewGuid();
        using (var running = cancels.Watch([(job, 1)]))
        {
            var token = running.Begin([job]);
            cancels.Cancel(job, 1);
            token.IsCancellationRequested.ShouldBeTrue();
        }

        _clock.Advance(RunCancels.Remember - TimeSpan.FromSeconds(1));
        using var late = cancels.Watch([(job, 1)]);
        late.Begin([job]).IsCancellationRequested.ShouldBeTrue();
        late.IsCancelled(job).ShouldBeTrue();
    }

    [Fact]
    public void A_retry_of_a_cancelled_job_runs_its_next_series_untouched_by_the_cancel()
    {
        var cancels = new RunCancels(_clock);
        var job = Guid.NewGuid();
        cancels.Cancel(job, 1);

        using var retry = cancels.Watch([(job, 2)]);
        var token = retry.Begin([job]);

        token.IsCancellationRequested.ShouldBeFalse();
        retry.IsCancelled(job).ShouldBeFalse();

        // A late abort of the first series does not reach the second's run either; one of its own does.
        cancels.Cancel(job, 1);
        token.IsCancellationRequested.ShouldBeFalse();
        cancels.Cancel(job, 2);
        token.IsCancellationRequested.ShouldBeTrue();
    }

    [Fact]
    public void A_cancel_that_names_no_series_aborts_the_jobs_running_run_and_is_not_remembered()
    {
        // From an API of an earlier version during a rolling upgrade.
        var cancels = new RunCancels(_clock);
        var job = Guid.NewGuid();
        using (var retry = cancels.Watch([(job, 3)]))
        {
            var token = retry.Begin([job]);
            cancels.CancelRunning(job);
            token.IsCancellationRequested.ShouldBeTrue();
        }

        using var next = cancels.Watch([(job, 4)]);
        next.Begin([job]).IsCancellationRequested.ShouldBeFalse();
    }

    [Fact]
    public void A_cancel_heard_more_than_a_minute_ago_is_forgotten_even_when_no_other_cancel_came_since()
    {
        var cancels = new RunCancels(_clock);
        var job = Guid.NewGuid();
        cancels.Cancel(job, 1);

        _clock.Advance(RunCancels.Remember + TimeSpan.FromSeconds(1));
        using var watch = cancels.Watch([(job, 1)]);

        watch.Begin([job]).IsCancellationRequested.ShouldBeFalse();
    }
}
