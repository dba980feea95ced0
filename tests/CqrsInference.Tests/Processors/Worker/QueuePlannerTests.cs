using CqrsInference.Messaging;
using CqrsInference.Processors.Worker;
using Shouldly;

namespace CqrsInference.Tests.Processors.Worker;

public sealed class QueuePlannerTests
{
    private static QueueState Q(string region, string priority, string tenant, long waiting, long inFlight = 0) =>
        new(new JobQueue(region, "m", priority, tenant), waiting, inFlight);

    private static QueuePlanner Planner(int weight = 4, int threshold = 20, bool overflow = true) =>
        new("eu", new SchedulingOptions { InteractiveWeight = weight, OverflowThreshold = threshold, Overflow = overflow });

    /// <summary>Takes one job at a time, <paramref name="n"/> times, as a processor with one free slot would.</summary>
    private static List<JobQueue> TakeOneByOne(QueuePlanner planner, List<QueueState> queues, int n)
    {
        var taken = new List<JobQueue>();
        for (var i = 0; i < n; i++)
        {
            var plan = planner.Plan(queues, free: 1, remoteAllowance: 1);
            if (plan.Count == 0)
            {
                break;
            }

            plan.ShouldHaveSingleItem().Count.ShouldBe(1);
            taken.Add(plan[0].Queue);
            queues = queues.Select(q => q.Queue == plan[0].Queue ? q with { Waiting = q.Waiting - 1 } : q).ToList();
        }

        return taken;
    }

    [Fact]
    public void Interactive_goes_first_and_batch_gets_one_in_every_weight_plus_one()
    {
        var taken = TakeOneByOne(Planner(weight: 4), [Q("eu", "batch", "a", 100), Q("eu", "interactive", "a", 100)], 50);

        taken.Take(4).ShouldAllBe(q => q.Priority == "interactive");
        taken.Count(q => q.Priority == "batch").ShouldBe(10);
        taken.Count(q => q.Priority == "interactive").ShouldBe(40);

        // Never more than four interactive jobs in a row while batch work waits.
        var run = 0;
        foreach (var q in taken)
        {
            run = q.Priority == "interactive" ? run + 1 : 0;
            run.ShouldBeLessThanOrEqualTo(4);
        }
    }

    [Fact]
    public void Batch_takes_all_capacity_when_no_interactive_work_waits()
    {
        var plan = Planner().Plan([Q("eu", "batch", "a", 100), Q("eu", "interactive", "a", 0)], free: 16, remoteAllowance: 1);

        plan.ShouldHaveSingleItem().ShouldBe(new PullPlan(new JobQueue("eu", "m", "batch", "a"), 16, Remote: false));
    }

    [Fact]
    public void A_queue_listed_twice_is_planned_once()
    {
        // A consumer list that paged while consumers were recreated (a takeover) named one queue twice.
        var plan = Planner().Plan([Q("eu", "batch", "a", 5), Q("eu", "batch", "a", 7)], free: 16, remoteAllowance: 1);

        plan.ShouldHaveSingleItem().ShouldBe(new PullPlan(new JobQueue("eu", "m", "batch", "a"), 7, Remote: false));
    }

    [Fact]
    public void A_tenants_burst_does_not_starve_the_others()
    {
        // Tenant "big" has 10,000 jobs waiting, "small" has 3: they alternate until small is served.
        var taken = TakeOneByOne(Planner(), [Q("eu", "batch", "big", 10_000), Q("eu", "batch", "small", 3)], 6);

        taken.Select(q => q.Tenant).ShouldBe(["big", "small", "big", "small", "big", "small"]);
    }

    [Fact]
    public void Free_capacity_is_shared_across_tenants_in_one_plan()
    {
        var plan = Planner().Plan([Q("eu", "interactive", "a", 100), Q("eu", "interactive", "b", 100), Q("eu", "interactive", "c", 2)], free: 12, remoteAllowance: 0);

        plan.ToDictionary(p => p.Queue.Tenant, p => p.Count).ShouldBe(new Dictionary<string, int> { ["a"] = 5, ["b"] = 5, ["c"] = 2 });
    }

    [Fact]
    public void Overflow_starts_at_the_threshold_and_stops_below_it()
    {
        var planner = Planner(threshold: 20);

        // Home idle, the other region's backlog below the threshold: its jobs stay there.
        planner.Plan([Q("us", "interactive", "a", 19, inFlight: 50)], free: 8, remoteAllowance: 4).ShouldBeEmpty();

        // At the threshold: the excess, one job, goes; the region is left just below it.
        planner.Plan([Q("us", "interactive", "a", 20)], free: 8, remoteAllowance: 4)
            .ShouldHaveSingleItem().ShouldBe(new PullPlan(new JobQueue("us", "m", "interactive", "a"), 1, Remote: true));

        // Well above it: idle slots take one remote job each, no more.
        planner.Plan([Q("us", "interactive", "a", 30)], free: 8, remoteAllowance: 4)
            .ShouldHaveSingleItem().ShouldBe(new PullPlan(new JobQueue("us", "m", "interactive", "a"), 4, Remote: true));

        // Back below it: overflow stops.
        planner.Plan([Q("us", "interactive", "a", 12)], free: 8, remoteAllowance: 4).ShouldBeEmpty();
    }

    [Fact]
    public void A_short_queue_overflows_once_its_oldest_job_waited_long_enough()
    {
        var planner = new QueuePlanner("eu", new SchedulingOptions { OverflowThreshold = 20, OverflowAfter = TimeSpan.FromSeconds(5) });
        var now = DateTimeOffset.Parse("2026-11-25T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var queue = Q("us", "batch", "a", 3) with { OldestAt = now.AddSeconds(-4) };

        planner.Plan([queue], free: 4, remoteAllowance: 4, now).ShouldBeEmpty();
        planner.Plan([queue with { OldestAt = now.AddSeconds(-5) }], free: 4, remoteAllowance: 4, now)
            .ShouldHaveSingleItem().Count.ShouldBe(3);
    }

    [Fact]
    public void Home_work_comes_before_any_overflow_and_remote_takes_only_what_is_left()
    {
        var planner = Planner(threshold: 5);

        planner.Plan([Q("eu", "batch", "a", 10), Q("us", "interactive", "a", 500)], free: 8, remoteAllowance: 8)
            .ShouldAllBe(p => !p.Remote);

        var plan = planner.Plan([Q("eu", "batch", "a", 3), Q("us", "interactive", "a", 500)], free: 8, remoteAllowance: 2);
        plan.ShouldContain(new PullPlan(new JobQueue("eu", "m", "batch", "a"), 3, Remote: false));
        plan.ShouldContain(new PullPlan(new JobQueue("us", "m", "interactive", "a"), 2, Remote: true));
    }

    [Fact]
    public void The_largest_backlog_overflows_first_and_overflow_can_be_turned_off()
    {
        var queues = new List<QueueState> { Q("us", "interactive", "a", 30), Q("ap", "interactive", "a", 90) };

        Planner().Plan(queues, free: 1, remoteAllowance: 1).ShouldHaveSingleItem().Queue.Region.ShouldBe("ap");
        Planner(overflow: false).Plan(queues, free: 1, remoteAllowance: 1).ShouldBeEmpty();
    }

    [Fact]
    public void Queue_subjects_round_trip_and_foreign_subjects_are_not_queues()
    {
        var queue = new JobQueue("eu-west", "ppocr-rec", "batch", "acme_1");
        JobQueue.TryParse($"log.0.jobs.eu-west.ppocr-rec.batch.acme_1.{Guid.NewGuid():N}", out var parsed).ShouldBeTrue();
        parsed.ShouldBe(queue);
        queue.ConsumerName.ShouldNotBe(new JobQueue("eu", "west-ppocr-rec", "batch", "acme_1").ConsumerName);

        JobQueue.TryParse("jobs.eu.m", out _).ShouldBeFalse();
        JobQueue.TryParse("jobs.eu.m.urgent.a", out _).ShouldBeFalse();
        JobQueue.TryParse("events.eu.m.batch.a", out _).ShouldBeFalse();
    }

    [Theory]
    [InlineData("2.9.10", false)]
    [InlineData("2.10.22", false)]
    [InlineData("2.11.0", true)]
    [InlineData("2.12.1-beta", true)]
    [InlineData(null, false)]
    [InlineData("garbage", false)]
    public void Only_servers_from_2_11_have_priority_groups(string? version, bool native) =>
        OverflowMode.ServerHasPriorityGroups(version).ShouldBe(native);
}
