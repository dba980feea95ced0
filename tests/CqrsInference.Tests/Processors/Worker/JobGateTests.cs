using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Processors.Worker;
using CqrsInference.Processors.Worker.Gating;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace CqrsInference.Tests.Processors.Worker;

public sealed class JobGateTests
{
    private readonly FakeClaims _claims = new();
    private readonly FakeClaimCheck _blobs = new();
    private readonly JobGate _gate;

    public JobGateTests()
    {
        _gate = new JobGate(_claims, _blobs, new WorkerIdentity("w1", "local", "cpu", "cpu"), new FakeTimeProvider(Jobs.Now), NullLogger.Instance);
    }

    [Fact]
    public async Task A_job_with_nothing_against_it_runs()
    {
        var job = Jobs.Command();

        var result = await _gate.PassAsync([Jobs.Delivery(job)], CancellationToken.None);

        result.Runnable.ShouldHaveSingleItem().Job.JobId.ShouldBe(job.JobId);
        result.Ended.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_job_its_delivery_decoded_already_is_not_decoded_again()
    {
        var job = Jobs.Command();
        var decoded = Jobs.Delivery("not json"u8.ToArray(), new JobQueue(job.Region, job.Model, job.Priority, job.Tenant)) with { Decoded = job };

        var result = await _gate.PassAsync([decoded], CancellationToken.None);

        result.Runnable.ShouldHaveSingleItem().Job.ShouldBeSameAs(job);
    }

    [Fact]
    public async Task A_message_that_is_no_job_is_terminated_without_an_event()
    {
        var ack = new FakeAck();

        var result = await _gate.PassAsync([Jobs.Delivery("not json"u8.ToArray(), new JobQueue("local", "mlp-test", "interactive", "acme"), ack: ack)], CancellationToken.None);

        result.Runnable.ShouldBeEmpty();
        result.Ended.ShouldBeEmpty();
        ack.Calls.ShouldBe(["terminate"]);
    }

    [Fact]
    public async Task A_job_a_cancel_claimed_first_ends_cancelled_and_never_runs()
    {
        var cancelled = Jobs.Command();
        var other = Jobs.Command();
        _claims.Outcomes[cancelled.JobId] = ClaimOutcome.Cancelled;

        var result = await _gate.PassAsync([Jobs.Delivery(cancelled), Jobs.Delivery(other)], CancellationToken.None);

        result.Runnable.ShouldHaveSingleItem().Job.JobId.ShouldBe(other.JobId);
        var ended = result.Ended.ShouldHaveSingleItem();
        ended.Event.ShouldBeOfType<V1.JobCancelled>().JobId.ShouldBe(cancelled.JobId);
        ended.Settlement.ShouldBeOfType<Settlement.Terminate>();
    }

    [Fact]
    public async Task A_job_whose_deadline_passed_while_it_waited_ends_expired()
    {
        var late = Jobs.Command(deadline: Jobs.Now.AddMilliseconds(-1));
        var inTime = Jobs.Command(deadline: Jobs.Now.AddSeconds(1));

        var result = await _gate.PassAsync([Jobs.Delivery(late), Jobs.Delivery(inTime)], CancellationToken.None);

        result.Runnable.ShouldHaveSingleItem().Job.JobId.ShouldBe(inTime.JobId);
        var expired = result.Ended.ShouldHaveSingleItem().Event.ShouldBeOfType<V1.JobExpired>();
        expired.JobId.ShouldBe(late.JobId);
        expired.ExpiredAt.ShouldBe(Jobs.Now);
    }

    [Fact]
    public async Task Inputs_in_the_object_store_are_loaded_before_the_job_runs()
    {
        var stored = Jobs.Command().Inputs;
        _blobs.Blobs["k1"] = stored;
        var job = Jobs.Command(inputsRef: new BlobRef("blobs", "k1", "k1", 10)) with { Inputs = [] };

        var result = await _gate.PassAsync([Jobs.Delivery(job)], CancellationToken.None);

        result.Runnable.ShouldHaveSingleItem().Job.Inputs.ShouldBe(stored);
    }

    [Fact]
    public async Task A_job_whose_stored_inputs_are_gone_fails_at_once_and_is_not_retried()
    {
        var job = Jobs.Command(inputsRef: new BlobRef("blobs", "gone", "gone", 10)) with { Inputs = [] };

        var result = await _gate.PassAsync([Jobs.Delivery(job)], CancellationToken.None);

        result.Runnable.ShouldBeEmpty();
        var ended = result.Ended.ShouldHaveSingleItem();
        var failed = ended.Event.ShouldBeOfType<V1.JobFailed>();
        failed.ErrorCode.ShouldBe(JobErrorCodes.InputCorrupt);
        failed.DeadLettered.ShouldBeFalse();
        ended.Settlement.ShouldBeOfType<Settlement.Terminate>();
    }
}
