using CqrsInference.Messaging;
using CqrsInference.Processors.Worker;
using CqrsInference.Processors.Worker.Fetching;

namespace CqrsInference.Tests.Processors.Worker;

public sealed class WorkerCapacityTests
{
    private static readonly JobQueue East = new("east", "m", "interactive", "t");

    [Fact]
    public void A_planned_pull_holds_its_jobs_until_they_arrive_or_the_pull_ends()
    {
        var capacity = new WorkerCapacity(capacity: 8, remoteSlots: 2);
        var pull = new PullPlan(East, 3, Remote: true);

        capacity.Reserve(pull);
        (capacity.Free, capacity.RemoteAllowance).ShouldBe((5, -1));

        capacity.Delivered(pull, remote: true);
        capacity.PullEnded(pull, delivered: 1);
        (capacity.Free, capacity.RemoteAllowance, capacity.InFlight).ShouldBe((7, 1, 1));

        capacity.Settled(1, 1);
        (capacity.Free, capacity.RemoteAllowance, capacity.InFlight).ShouldBe((8, 2, 0));
    }

    [Fact]
    public void Counted_jobs_are_coming_until_their_pull_delivered_them_or_ended()
    {
        var capacity = new WorkerCapacity(capacity: 8, remoteSlots: 2);
        var pull = new PullPlan(East, 2, Remote: false);

        capacity.Reserve(pull);
        capacity.JobsComing.ShouldBeTrue();
        capacity.Delivered(pull, remote: false);
        capacity.JobsComing.ShouldBeTrue("one of the two is still on its way");
        capacity.PullEnded(pull, delivered: 1);
        capacity.JobsComing.ShouldBeFalse("the pull ended short: another processor took the other job");

        capacity.Reserve(pull);
        capacity.Delivered(pull, remote: false);
        capacity.Delivered(pull, remote: false);
        capacity.JobsComing.ShouldBeFalse("both arrived");
        capacity.PullEnded(pull, delivered: 2);
        capacity.JobsComing.ShouldBeFalse();
    }

    [Fact]
    public async Task Signals_that_piled_up_cost_one_look()
    {
        var capacity = new WorkerCapacity(4, 1);
        for (var i = 0; i < 5; i++)
        {
            capacity.Signal();
        }

        await capacity.WaitForChangeAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await capacity.WaitForChangeAsync(TimeSpan.FromMilliseconds(200), CancellationToken.None);

        watch.Elapsed.ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(150), "the second wait had nothing left to take");
    }
}
