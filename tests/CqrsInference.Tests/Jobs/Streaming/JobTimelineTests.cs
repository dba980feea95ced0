using CqrsInference.Api.Jobs;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;

namespace CqrsInference.Tests.Jobs.Streaming;

/// <summary>What an SSE stream sends first and what it passes on, by event id, without a server.</summary>
public sealed class JobTimelineTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
    private readonly Guid _job = Guid.CreateVersion7();

    [Fact]
    public void A_fresh_stream_sends_the_status_now_under_the_id_of_the_last_recorded_event()
    {
        var recorded = Recorded(Submitted(), Started());

        var (timeline, missed) = JobTimeline.Start(Accepted(), recorded, resumeAfter: null);

        missed.ShouldBeEmpty();
        timeline.Status.Status.ShouldBe(JobStatuses.Running);
        timeline.LastEventId.ShouldBe(recorded[1].Id);
    }

    [Fact]
    public void A_resumed_stream_sends_each_recorded_event_after_the_last_one_seen_with_the_status_it_led_to()
    {
        var recorded = Recorded(Submitted(), Started(), Succeeded());

        var (timeline, missed) = JobTimeline.Start(Accepted(), recorded, resumeAfter: recorded[0].Id);

        missed.Select(m => m.EventId).ShouldBe([recorded[1].Id, recorded[2].Id]);
        missed.Select(m => m.Status.Status).ShouldBe([JobStatuses.Running, JobStatuses.Succeeded]);
        timeline.Ended.ShouldBeTrue();
    }

    [Fact]
    public void A_resumed_stream_that_missed_nothing_sends_only_the_status()
    {
        var recorded = Recorded(Submitted(), Started());

        var (timeline, missed) = JobTimeline.Start(Accepted(), recorded, resumeAfter: recorded[1].Id);

        missed.ShouldBeEmpty();
        timeline.LastEventId.ShouldBe(recorded[1].Id);
    }

    [Fact]
    public void An_event_already_recorded_or_seen_is_not_passed_on_again_and_a_new_one_is_under_its_recorded_id()
    {
        var started = Started();
        var (timeline, _) = JobTimeline.Start(Accepted(), Recorded(Submitted(), started), resumeAfter: null);

        timeline.Take(started).ShouldBeNull();
        var ending = Succeeded();
        var step = timeline.Take(ending).ShouldNotBeNull();
        step.EventId.ShouldBe(JobLifecycle.EventId(ending));
        step.Status.Status.ShouldBe(JobStatuses.Succeeded);
        timeline.Take(ending).ShouldBeNull();
    }

    [Fact]
    public void A_last_id_not_yet_recorded_counts_as_seen_when_it_comes_from_the_log()
    {
        var started = Started();

        var (timeline, missed) = JobTimeline.Start(Accepted(), Recorded(Submitted()), resumeAfter: JobLifecycle.EventId(started));

        missed.ShouldBeEmpty();
        timeline.Take(started).ShouldBeNull();
        timeline.Take(Succeeded()).ShouldNotBeNull();
    }

    [Fact]
    public void Nothing_after_the_ending_is_passed_on()
    {
        var (timeline, _) = JobTimeline.Start(Accepted(), Recorded(Submitted(), new V1.JobCancelled(_job, Now, "test")), resumeAfter: null);

        timeline.Take(Succeeded()).ShouldBeNull();
        timeline.Status.Status.ShouldBe(JobStatuses.Cancelled);
    }

    [Fact]
    public void With_nothing_recorded_yet_the_stream_starts_from_the_job_as_accepted_without_an_id()
    {
        var (timeline, missed) = JobTimeline.Start(Accepted(), [], resumeAfter: null);

        missed.ShouldBeEmpty();
        timeline.Status.Status.ShouldBe(JobStatuses.Queued);
        timeline.LastEventId.ShouldBeNull();
        timeline.Take(Submitted()).ShouldBeNull();
        timeline.Take(Started()).ShouldNotBeNull();
    }

    [Fact]
    public void A_job_this_API_saw_end_reads_as_ended_while_only_its_submission_is_recorded()
    {
        var ended = JobStatusProjection.Evolve(Accepted(), Succeeded())!;

        var (timeline, _) = JobTimeline.Start(ended, Recorded(Submitted()), resumeAfter: null);

        timeline.Ended.ShouldBeTrue();
        timeline.Status.Status.ShouldBe(JobStatuses.Succeeded);
    }

    private static List<(Guid Id, object Event)> Recorded(params object[] events) => events.Select(e => (JobLifecycle.EventId(e), e)).ToList();

    private JobStatus Accepted() => JobStatusProjection.Create(Submitted());

    private V1.JobSubmitted Submitted() => new(_job, "acme", "mlp-test", "1", "local", "interactive", Now, "digest", 10, null);

    private V1.JobStarted Started() => new(_job, 1, "w", "cpu", Now.AddMilliseconds(5), 5);

    private V1.JobSucceeded Succeeded() => new(_job, 1, "w", "cpu", Now.AddMilliseconds(9), 4, 1, []);
}
