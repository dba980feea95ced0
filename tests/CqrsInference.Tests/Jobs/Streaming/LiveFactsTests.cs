using CqrsInference.Api.Live;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs;

namespace CqrsInference.Tests.Jobs.Streaming;

/// <summary>What the live stream reads off the log's subjects and headers, how it coalesces, and how it stays bounded: without a server.</summary>
public sealed class LiveFactsTests
{
    private static readonly Guid Job = new("0192f1a4-7b1c-7cde-9f00-1234567890ab");
    private static readonly DateTimeOffset At = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void A_submission_names_its_tenant_model_and_region_and_is_queued()
    {
        var fact = LiveFacts.Read($"log.3.jobs.eu.mlp-test.interactive.acme.{Job:N}", null, At, 7).ShouldBeOfType<LiveFacts.Job>();

        fact.Change.ShouldBe(new JobChange(Job, "acme", "mlp-test", "eu", EventNames.JobSubmitted, JobStatuses.Queued, At, 7));
        LiveFacts.Read($"log.3.served.eu.mlp-test.interactive.acme.{Job:N}", null, At, 8).ShouldBeOfType<LiveFacts.Job>().Change.Tenant.ShouldBe("acme");
    }

    [Fact]
    public void A_lifecycle_event_names_no_tenant_and_leads_to_the_status_of_its_type()
    {
        var fact = LiveFacts.Read($"log.0.events.eu.mlp-test.{Job:N}", EventNames.JobSucceeded, At, 9).ShouldBeOfType<LiveFacts.Job>();

        fact.Change.ShouldBe(new JobChange(Job, null, "mlp-test", "eu", EventNames.JobSucceeded, JobStatuses.Succeeded, At, 9));
    }

    [Theory]
    [InlineData("log.0.events.processors.0192f1a47b1c7cde9f001234567890ab", EventNames.ProcessorHeartbeat, true)]
    [InlineData("log.0.events.eu.mlp-test.0192f1a47b1c7cde9f001234567890ab", "v9.unknown", false)]
    [InlineData("log.0.events.eu.mlp-test.not-a-job", EventNames.JobStarted, false)]
    [InlineData("log.0.jobs.eu.mlp-test.interactive.acme", null, false)]
    [InlineData("other.0.jobs.eu.mlp-test.interactive.acme.0192f1a47b1c7cde9f001234567890ab", null, false)]
    public void Anything_else_is_a_processor_fact_or_nothing(string subject, string? type, bool processor)
    {
        var fact = LiveFacts.Read(subject, type, At, 1);

        (fact is LiveFacts.Processor).ShouldBe(processor);
        (fact is LiveFacts.Job).ShouldBeFalse();
    }

    [Fact]
    public void Coalescing_keeps_the_latest_change_but_an_ended_job_reopens_only_by_a_retry()
    {
        var queued = Change(EventNames.JobSubmitted, JobStatuses.Queued, 1) with { Tenant = "acme" };
        var running = Change(EventNames.JobStarted, JobStatuses.Running, 2);
        var succeeded = Change(EventNames.JobSucceeded, JobStatuses.Succeeded, 3);
        var lateServed = Change(EventNames.JobSubmitted, JobStatuses.Queued, 4);
        var retried = Change(EventNames.JobRetried, JobStatuses.Queued, 5);

        LiveFacts.Merge(null, queued).ShouldBe(queued);
        LiveFacts.Merge(queued, running).ShouldBe(running with { Tenant = "acme" });
        LiveFacts.Merge(running, succeeded).ShouldBe(succeeded);
        LiveFacts.Merge(succeeded, lateServed).ShouldBe(succeeded);
        LiveFacts.Merge(succeeded, retried).ShouldBe(retried);
    }

    [Fact]
    public void The_tenants_remembered_are_bounded_and_the_oldest_go_first()
    {
        var tenants = new JobTenants(capacity: 2);
        var (a, b, c) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());

        tenants.Remember(a, "t1");
        tenants.Remember(b, "t2");
        tenants.Remember(a, "t1");
        tenants.Remember(c, "t3");

        tenants.Count.ShouldBe(2);
        tenants.Of(a).ShouldBeNull();
        (tenants.Of(b), tenants.Of(c)).ShouldBe(("t2", "t3"));
    }

    [Fact]
    public void A_tenants_view_sees_its_own_jobs_only_and_a_job_of_no_known_tenant_only_the_operator_sees()
    {
        var tenant = new LiveView(new ApiCaller("acme", new HashSet<string> { ApiRoles.Read }, "k1"));
        var op = new LiveView(new ApiCaller("default", new HashSet<string> { ApiRoles.Operator }, "k0"));
        var own = Change(EventNames.JobStarted, JobStatuses.Running, 1) with { Tenant = "acme" };
        var other = own with { Tenant = "globex" };
        var unknown = own with { Tenant = null };

        (tenant.Sees(own), tenant.Sees(other), tenant.Sees(unknown)).ShouldBe((true, false, false));
        (op.Sees(own), op.Sees(other), op.Sees(unknown)).ShouldBe((true, true, true));
        (tenant.Queues, tenant.Processors, op.Queues, op.Processors).ShouldBe((false, false, true, true));
    }

    [Fact]
    public void A_stream_that_falls_behind_drops_its_buffer_once_it_holds_too_many_jobs_and_says_so()
    {
        var subscription = new LiveSubscription(null!, new LiveView(new ApiCaller("acme", new HashSet<string> { ApiRoles.Read }, "k1")));
        for (var i = 0; i <= LiveSubscription.Capacity; i++)
        {
            subscription.Add(new JobChange(Guid.NewGuid(), "acme", "m", "r", EventNames.JobSubmitted, JobStatuses.Queued, At, (ulong)i));
        }

        var behind = subscription.Take();
        behind.Overflowed.ShouldBeTrue();
        behind.Changes.ShouldBeEmpty();

        subscription.Add(Change(EventNames.JobStarted, JobStatuses.Running, 1) with { Tenant = "acme" });
        subscription.Add(Change(EventNames.JobSucceeded, JobStatuses.Succeeded, 2) with { Tenant = "acme" });
        var next = subscription.Take();
        next.Overflowed.ShouldBeFalse();
        next.Changes.ShouldBe([Change(EventNames.JobSucceeded, JobStatuses.Succeeded, 2) with { Tenant = "acme" }]);
    }

    [Fact]
    public void A_stream_takes_no_change_of_a_tenant_its_caller_does_not_see()
    {
        var subscription = new LiveSubscription(null!, new LiveView(new ApiCaller("acme", new HashSet<string> { ApiRoles.Read }, "k1")));

        subscription.Add(Change(EventNames.JobSubmitted, JobStatuses.Queued, 1) with { Tenant = "bravo" });
        subscription.Add(Change(EventNames.JobSubmitted, JobStatuses.Queued, 2));

        subscription.Take().Changes.ShouldBeEmpty("another tenant's job, and a job whose tenant is not known (the operator's only)");
    }

    private static JobChange Change(string type, string status, ulong sequence) => new(Job, null, "m", "r", type, status, At, sequence);
}
