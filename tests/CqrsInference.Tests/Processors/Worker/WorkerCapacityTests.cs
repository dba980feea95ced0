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

        capacity.Delivered(remote: true);
        capacity.PullEnded(pull, delivered: 1);
        (capacity.Free, capacity.RemoteAllowance, capacity.InFlight).ShouldBe((7, 1, 1));

        capacity.Settled(1, 1);
        (capacity.Free, capacity.RemoteAllowance, capacity.InFlight).ShouldBe((8, 2, 0));
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
