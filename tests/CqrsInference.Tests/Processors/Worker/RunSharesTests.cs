using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Publishing;

namespace CqrsInference.Tests.Processors.Worker;

/// <summary>Who carries a batch's run time (<see cref="RunShares"/>): pure logic.</summary>
public sealed class RunSharesTests
{
    private static readonly RunOutcome Ok = new RunOutcome.Succeeded([]);
    private static readonly TimeSpan Run = TimeSpan.FromMilliseconds(1000);

    [Fact]
    public void A_batch_run_once_is_shared_by_the_jobs_that_ran_in_it_and_not_by_one_refused_before_it()
    {
        var refused = new RunOutcome.Rejected("invalid_image", "not a PNG") { NotRun = true };

        RunShares.Of([Ok, refused, Ok, new RunOutcome.Rejected(JobErrorCodes.NonFiniteOutput, "NaN")], Run)
            .ShouldBe([new RunShare(1000, 3), null, new RunShare(1000, 3), new RunShare(1000, 3)]);
    }

    [Fact]
    public void After_a_timeout_each_job_carries_its_own_run_and_the_one_that_timed_out_again_carries_the_aborted_attempt()
    {
        // 1,000 ms in all: 500 ms of aborted batch, then 100 + 300 (timed out again) + 100 ms alone.
        var shares = RunShares.Of([Alone(Ok, 100), Alone(TimedOut(), 300) with { SetTheBound = true }, Alone(Ok, 100)], Run);

        shares.ShouldBe([new RunShare(100, 1), new RunShare(800, 1), new RunShare(100, 1)]);
        shares.Sum(s => s!.Value.Ms / s.Value.BatchSize).ShouldBe(1000, "what the jobs carry is the executor's busy time");
    }

    [Fact]
    public void A_job_refused_before_it_ran_again_alone_carries_nothing_and_breaks_nothing()
    {
        var refused = new RunOutcome.Rejected("invalid_image", "not a PNG") { NotRun = true, RanAlone = TimeSpan.FromMilliseconds(1) };

        RunShares.Of([Alone(Ok, 100), refused, Alone(Ok, 300)], Run).ShouldBe([new RunShare(400, 1), null, new RunShare(600, 1)]);
    }

    [Fact]
    public void After_a_timeout_the_job_whose_timeout_it_was_carries_the_aborted_attempt_though_it_passes_alone()
    {
        // Another tenant's jobs ran in a batch bounded by this job's 150 ms; alone it took 135 ms.
        RunShares.Of([Alone(Ok, 135) with { SetTheBound = true }, Alone(Ok, 20), Alone(Ok, 20)], Run)
            .ShouldBe([new RunShare(960, 1), new RunShare(20, 1), new RunShare(20, 1)]);
    }

    [Fact]
    public void When_no_job_fails_again_alone_the_aborted_attempt_is_shared_by_all()
    {
        RunShares.Of([Alone(Ok, 100), Alone(Ok, 300)], Run).ShouldBe([new RunShare(400, 1), new RunShare(600, 1)]);
    }

    [Fact]
    public void An_attempt_a_cancel_aborted_is_carried_by_no_job_and_the_others_carry_their_own_runs()
    {
        RunShares.Of([Alone(Ok, 100), Alone(new RunOutcome.Cancelled(), 0), Alone(TimedOut(), 300)], Run)
            .ShouldBe([new RunShare(100, 1), null, new RunShare(300, 1)]);
    }

    [Fact]
    public void A_run_that_took_no_time_gives_no_share()
    {
        RunShares.Of([Ok, Ok], TimeSpan.Zero).ShouldBe([null, null]);
    }

    private static RunOutcome TimedOut() => new RunOutcome.Rejected(JobErrorCodes.ExecutionTimeout, "aborted");

    private static RunOutcome Alone(RunOutcome outcome, double ms) => outcome with { RanAlone = TimeSpan.FromMilliseconds(ms) };
}
