using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker;
using CqrsInference.Processors.Worker.Gating;
using CqrsInference.Processors.Worker.Publishing;
using CqrsInference.Processors.Worker.Running;

namespace CqrsInference.Tests.Processors.Worker;

public sealed class OutcomeDecisionTests
{
    private static readonly WorkerIdentity West = new("w1", "west", "cpu", "h100");
    private static readonly BatchRun Run = new([], Jobs.Now, Jobs.Now.AddMilliseconds(12), TimeSpan.FromMilliseconds(12));
    private readonly OutcomeDecision _decision = new(West, maxDeliver: 3, retryBaseDelay: TimeSpan.FromSeconds(1));

    [Fact]
    public void A_job_that_ran_succeeds_with_its_outputs_and_leaves_the_queue()
    {
        var job = Jobs.Admitted(Jobs.Command(region: "west"));

        var ending = _decision.Decide(job, new RunOutcome.Succeeded(job.Job.Inputs), Run, batchSize: 4);

        var succeeded = ending.Event.ShouldBeOfType<V1.JobSucceeded>();
        succeeded.Outputs.ShouldBe(job.Job.Inputs);
        succeeded.BatchSize.ShouldBe(4);
        succeeded.RunMs.ShouldBe(12);
        succeeded.Context.ShouldBe(new JobContext("acme", "mlp-test", "west", "h100", ModelVersion: "1"));
        ending.Settlement.ShouldBeOfType<Settlement.Ack>();
    }

    [Fact]
    public void An_input_the_model_refused_fails_at_once_without_retry()
    {
        var ending = _decision.Decide(Jobs.Admitted(Jobs.Command()), new RunOutcome.Rejected("invalid_image", "not a PNG"), Run, 1);

        var failed = ending.Event.ShouldBeOfType<V1.JobFailed>();
        (failed.ErrorCode, failed.DeadLettered).ShouldBe(("invalid_image", false));
        ending.Settlement.ShouldBeOfType<Settlement.Terminate>();
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    public void A_fault_before_the_last_delivery_is_retried_with_exponential_backoff(int attempt, double seconds)
    {
        var ending = _decision.Decide(Jobs.Admitted(Jobs.Command(), attempt), new RunOutcome.Faulted("oom", "out of memory"), Run, 1);

        ending.Event.ShouldBeOfType<V1.JobAttemptFailed>().Attempt.ShouldBe(attempt);
        ending.Settlement.ShouldBe(new Settlement.Retry(TimeSpan.FromSeconds(seconds)));
    }

    [Fact]
    public void A_fault_on_the_last_delivery_dead_letters_the_job()
    {
        var ending = _decision.Decide(Jobs.Admitted(Jobs.Command(), attempt: 3), new RunOutcome.Faulted("oom", "out of memory"), Run, 1);

        var failed = ending.Event.ShouldBeOfType<V1.JobFailed>();
        failed.DeadLettered.ShouldBeTrue();
        failed.Reason.ShouldContain("out of memory");
        ending.Settlement.ShouldBeOfType<Settlement.Terminate>();
    }

    [Fact]
    public void A_start_says_how_long_the_job_waited_and_whether_it_ran_outside_its_region()
    {
        var home = _decision.Started(Jobs.Admitted(Jobs.Command(region: "west")), Jobs.Now);
        var overflowed = _decision.Started(Jobs.Admitted(Jobs.Command(region: "east"), attempt: 2), Jobs.Now);

        home.QueueWaitMs.ShouldBe(250);
        (home.RanInRegion, home.Overflowed, home.Attempt).ShouldBe(("west", false, 1));
        (overflowed.RanInRegion, overflowed.Overflowed, overflowed.Attempt).ShouldBe(("west", true, 2));
    }
}
