using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker;
using CqrsInference.Processors.Worker.Gating;
using CqrsInference.Processors.Worker.Publishing;
using CqrsInference.Processors.Worker.Running;

namespace CqrsInference.Tests.Processors.Worker;

public sealed class OutcomePublisherTests
{
    private readonly FakeEventLog _log = new();
    private readonly FakeClaimCheck _blobs = new() { Threshold = 1 };
    private readonly OutcomePublisher _publisher;

    public OutcomePublisherTests()
    {
        _publisher = new OutcomePublisher(_log, _blobs, new OutcomeDecision(new WorkerIdentity("w1", "local", "cpu", "cpu"), 5, TimeSpan.FromSeconds(1)), "mlp-test", "local");
    }

    [Fact]
    public async Task A_delivery_is_settled_only_after_its_event_is_stored()
    {
        var ack = new FakeAck();
        var job = new AdmittedJob(Jobs.Delivery(Jobs.Command(), ack: ack), Jobs.Command());
        _log.FailWith = new TimeoutException("the log does not answer");

        await Should.ThrowAsync<TimeoutException>(() => _publisher.SettleAsync([new JobEnding(job, new V1.JobExpired(job.Job.JobId, Jobs.Now, Jobs.Now, "w1"), new Settlement.Terminate())], null));

        ack.Calls.ShouldBeEmpty();
        _log.FailWith = null;
        await _publisher.SettleAsync([new JobEnding(job, new V1.JobExpired(job.Job.JobId, Jobs.Now, Jobs.Now, "w1"), new Settlement.Terminate())], null);
        ack.Calls.ShouldBe(["terminate"]);
        _log.Events.ShouldHaveSingleItem().ShouldBeOfType<V1.JobExpired>();
    }

    [Fact]
    public async Task A_batch_that_failed_outside_the_model_goes_back_except_a_job_on_its_last_delivery_which_is_dead_lettered()
    {
        var (early, last, garbage) = (new FakeAck(), new FakeAck(), new FakeAck());
        var lastJob = Jobs.Command();
        var batch = new[]
        {
            Jobs.Delivery(Jobs.Command(), attempt: 2, ack: early),
            Jobs.Delivery(lastJob, attempt: 5, ack: last),
            Jobs.Delivery("not a job"u8.ToArray(), new CqrsInference.Messaging.JobQueue("local", "mlp-test", "interactive", "default"), attempt: 5, ack: garbage),
        };

        await _publisher.HandBackAsync(batch, new InvalidCastException("a decoder nobody expected"), Jobs.Now, TimeSpan.FromSeconds(1));

        early.Calls.ShouldBe(["retry 1s"]);
        last.Calls.ShouldBe(["terminate"]);
        garbage.Calls.ShouldBe(["retry 1s"]);
        var failed = _log.Events.ShouldHaveSingleItem().ShouldBeOfType<V1.JobFailed>();
        (failed.JobId, failed.DeadLettered, failed.ErrorCode).ShouldBe((lastJob.JobId, true, JobErrorCodes.ProcessorError));
        failed.Reason.ShouldContain("a decoder nobody expected");
    }

    [Fact]
    public async Task A_last_delivery_whose_dead_letter_cannot_be_published_goes_back_too()
    {
        var ack = new FakeAck();
        _log.FailWith = new TimeoutException("the log does not answer");

        await _publisher.HandBackAsync([Jobs.Delivery(Jobs.Command(), attempt: 5, ack: ack)], new TimeoutException("KV away"), Jobs.Now, TimeSpan.FromSeconds(1));

        ack.Calls.ShouldBe(["retry 1s"]);
    }

    [Fact]
    public async Task Each_settlement_reaches_its_own_delivery()
    {
        var (a, b, c) = (new FakeAck(), new FakeAck(), new FakeAck());
        AdmittedJob Job(FakeAck ack) => new(Jobs.Delivery(Jobs.Command(), ack: ack), Jobs.Command());

        await _publisher.SettleAsync(
        [
            new JobEnding(Job(a), new V1.JobCancelled(Guid.NewGuid(), Jobs.Now, "k"), new Settlement.Ack()),
            new JobEnding(Job(b), new V1.JobCancelled(Guid.NewGuid(), Jobs.Now, "k"), new Settlement.Retry(TimeSpan.FromSeconds(2))),
            new JobEnding(Job(c), new V1.JobCancelled(Guid.NewGuid(), Jobs.Now, "k"), new Settlement.Terminate()),
        ], null);

        (a.Calls.Single(), b.Calls.Single(), c.Calls.Single()).ShouldBe(("ack", "retry 2s", "terminate"));
    }

    [Fact]
    public async Task Outputs_over_the_threshold_go_to_the_object_store_and_the_event_carries_their_reference()
    {
        var job = Jobs.Admitted(Jobs.Command());
        var run = new BatchRun([new RunOutcome.Succeeded(job.Job.Inputs)], Jobs.Now, Jobs.Now, TimeSpan.FromMilliseconds(3));

        var ending = (await _publisher.EndingsOfAsync([job], run, unannouncedStart: null)).ShouldHaveSingleItem();

        var succeeded = ending.Event.ShouldBeOfType<V1.JobSucceeded>();
        succeeded.Outputs.ShouldBeEmpty();
        _blobs.Blobs[succeeded.OutputsRef!.Key].ShouldBe(job.Job.Inputs);
        succeeded.Start.ShouldBeNull();
    }

    [Fact]
    public async Task An_ending_carries_the_start_that_was_not_published_on_its_own()
    {
        var job = Jobs.Admitted(Jobs.Command());
        var run = new BatchRun([new RunOutcome.Faulted("oom", "no memory")], Jobs.Now, Jobs.Now, TimeSpan.FromMilliseconds(3));

        var ending = (await _publisher.EndingsOfAsync([job], run, unannouncedStart: Jobs.Now)).ShouldHaveSingleItem();

        var start = ending.Event.ShouldBeOfType<V1.JobAttemptFailed>().Start.ShouldNotBeNull();
        (start.StartedAt, start.QueueWaitMs, start.RanInRegion, start.Overflowed).ShouldBe((Jobs.Now, 250d, "local", false));
    }

    [Fact]
    public async Task Starts_are_published_for_every_job_of_the_batch()
    {
        var jobs = new[] { Jobs.Admitted(Jobs.Command()), Jobs.Admitted(Jobs.Command()) };
        using var traces = new JobTraces(jobs);

        await _publisher.AnnounceStartedAsync(jobs, traces, Jobs.Now);

        _log.Events.OfType<V1.JobStarted>().Select(e => e.JobId).ShouldBe(jobs.Select(j => j.Job.JobId), ignoreOrder: true);
    }

    [Fact]
    public async Task A_job_in_a_batch_twice_is_traced_once_and_both_its_deliveries_are_settled()
    {
        var command = Jobs.Command();
        var (first, second) = (new FakeAck(), new FakeAck());
        var jobs = new[] { new AdmittedJob(Jobs.Delivery(command, ack: first), command), new AdmittedJob(Jobs.Delivery(command, ack: second), command) };
        using var traces = new JobTraces(jobs);
        var run = new BatchRun([new RunOutcome.Succeeded([]), new RunOutcome.Succeeded([])], Jobs.Now, Jobs.Now, TimeSpan.FromMilliseconds(1));

        await _publisher.SettleAsync(await _publisher.EndingsOfAsync(jobs, run, unannouncedStart: Jobs.Now), traces);

        first.Calls.ShouldBe(["ack"]);
        second.Calls.ShouldBe(["ack"]);
    }
}
