using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Running;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace CqrsInference.Tests.Processors.Worker;

/// <summary>
/// The execution timeout rule (<see cref="TimedRunner"/>) on a fake clock: a run past the smallest
/// timeout of its batch is aborted, a lone job that was aborted fails with execution_timeout, and a
/// batch that was aborted runs each job again alone.
/// </summary>
public sealed class TimedRunnerTests : IDisposable
{
    private readonly FakeTimeProvider _clock = new(Jobs.Now);
    private readonly ManualResetEventSlim _never = new();

    public void Dispose() => _never.Dispose();

    [Fact]
    public async Task A_lone_job_whose_run_passes_its_timeout_is_aborted_and_fails_with_execution_timeout()
    {
        var model = new FakeRunner(runUntil: _never);
        var runner = new TimedRunner(model, Jobs.Model(), new RunCancels(_clock), _clock, NullLogger.Instance);

        var running = Task.Run(() => runner.Run([Jobs.Admitted(Jobs.Command(timeoutMs: 200))], CancellationToken.None));
        await Retry.Until("the run to start", () => Task.FromResult(model.Runs), n => n == 1);
        _clock.Advance(TimeSpan.FromMilliseconds(199));
        running.IsCompleted.ShouldBeFalse();
        _clock.Advance(TimeSpan.FromMilliseconds(1));

        var outcome = (await running).ShouldHaveSingleItem().ShouldBeOfType<RunOutcome.Rejected>();
        outcome.Code.ShouldBe(JobErrorCodes.ExecutionTimeout);
        outcome.Reason.ShouldBe("The run passed the execution timeout of 200 ms and was aborted.");
        model.Runs.ShouldBe(1);
    }

    [Fact]
    public async Task A_job_that_asks_for_no_timeout_runs_under_its_models()
    {
        var model = new FakeRunner(runUntil: _never);
        var runner = new TimedRunner(model, Jobs.Model(timeoutMs: 1500), new RunCancels(_clock), _clock, NullLogger.Instance);

        var running = Task.Run(() => runner.Run([Jobs.Admitted(Jobs.Command())], CancellationToken.None));
        await Retry.Until("the run to start", () => Task.FromResult(model.Runs), n => n == 1);
        _clock.Advance(TimeSpan.FromMilliseconds(1500));

        (await running).ShouldHaveSingleItem().ShouldBeOfType<RunOutcome.Rejected>().Reason.ShouldContain("1500 ms");
    }

    [Fact]
    public async Task A_batch_past_its_smallest_timeout_is_aborted_and_each_job_runs_again_alone_so_only_the_slow_one_fails()
    {
        var model = new FakeRunner();
        var runner = new TimedRunner(new FaultInjectingRunner(model), Jobs.Model(), new RunCancels(_clock), _clock, NullLogger.Instance);
        var batch = new[] { Jobs.Command(), Jobs.Command(fault: "hang", timeoutMs: 200), Jobs.Command(timeoutMs: 5000) }.Select(j => Jobs.Admitted(j)).ToList();

        var running = Task.Run(() => runner.Run(batch, CancellationToken.None));
        await Retry.Until("the batch to run", () => Task.FromResult(model.Runs), n => n == 1);
        _clock.Advance(TimeSpan.FromMilliseconds(200));
        await Retry.Until("the hanging job to run again alone", () => Task.FromResult(model.Runs), n => n == 3);
        _clock.Advance(TimeSpan.FromMilliseconds(200));
        var outcomes = await running;

        outcomes.Count.ShouldBe(3);
        outcomes[0].ShouldBeOfType<RunOutcome.Succeeded>();
        outcomes[1].ShouldBeOfType<RunOutcome.Rejected>().Code.ShouldBe(JobErrorCodes.ExecutionTimeout);
        outcomes[2].ShouldBeOfType<RunOutcome.Succeeded>();
        model.Runs.ShouldBe(4);
        outcomes.Select(o => o.RanAlone).ShouldBe([TimeSpan.Zero, TimeSpan.FromMilliseconds(200), TimeSpan.Zero], "each job's own run, on the fake clock");
        outcomes.Select(o => o.SetTheBound).ShouldBe([false, true, false], "the 200 ms timeout was the hanging job's");
    }

    [Fact]
    public void A_batch_that_ends_in_time_runs_once()
    {
        var model = new FakeRunner();
        var runner = new TimedRunner(model, Jobs.Model(), new RunCancels(_clock), _clock, NullLogger.Instance);

        var outcomes = runner.Run([Jobs.Admitted(Jobs.Command(timeoutMs: 1)), Jobs.Admitted(Jobs.Command())], CancellationToken.None);

        outcomes.ShouldAllBe(o => o is RunOutcome.Succeeded && o.RanAlone == null);
        model.Runs.ShouldBe(1);
    }

    [Fact]
    public void An_abort_from_outside_is_not_taken_for_a_timeout()
    {
        var runner = new TimedRunner(new FakeRunner(runUntil: _never), Jobs.Model(), new RunCancels(_clock), _clock, NullLogger.Instance);
        using var abort = new CancellationTokenSource();
        abort.Cancel();

        Should.Throw<ExecutionTimeoutException>(() => runner.Run([Jobs.Admitted(Jobs.Command())], abort.Token));
    }

    [Theory]
    [InlineData("hang")]
    [InlineData("sleep:60000")]
    public void An_injected_hang_or_sleep_is_part_of_the_run_and_ends_when_it_is_aborted(string fault)
    {
        var runner = new FaultInjectingRunner(new FakeRunner());
        using var abort = new CancellationTokenSource(TimeSpan.FromMilliseconds(20));

        Should.Throw<ExecutionTimeoutException>(() => runner.Run([Jobs.Admitted(Jobs.Command(fault: fault))], abort.Token));
    }
}
