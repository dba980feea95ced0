using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;
using CqrsInference.Projections.Recording.JobLog;

namespace CqrsInference.Tests.Recording;

/// <summary>The recorder's rules for a run of the job log, without I/O.</summary>
public sealed class RecordingPlanTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
    private ulong _sequence;

    [Fact]
    public void A_submission_and_its_ending_in_one_run_start_the_stream_at_versions_1_and_2()
    {
        var job = Guid.CreateVersion7();

        var plan = RecordingPlan.Make([Submitted(job), Succeeded(job)], new Dictionary<Guid, JobStream>());

        plan.Started.ShouldBe([job]);
        plan.Appended.Select(a => a.Version).ShouldBe([1L, 2L]);
        plan.Touched[job].Status.Status.ShouldBe(JobStatuses.Succeeded);
        plan.Ended.Select(e => e.JobId).ShouldBe([job]);
        plan.Dropped.ShouldBeEmpty();
    }

    [Fact]
    public void An_event_recorded_before_is_dropped_as_a_duplicate_and_the_version_continues_from_the_store()
    {
        var job = Guid.CreateVersion7();
        var submitted = Submitted(job);
        var started = Started(job);
        var known = new Dictionary<Guid, JobStream> { [job] = Stream(submitted, started) };

        var plan = RecordingPlan.Make([submitted, started, Succeeded(job)], known);

        plan.Dropped.Select(d => d.Why).ShouldBe([DropReason.Duplicate, DropReason.Duplicate]);
        plan.Started.ShouldBeEmpty();
        plan.Appended.Single().Version.ShouldBe(3L);
    }

    [Fact]
    public void After_a_job_ended_its_later_events_are_dropped_and_the_first_ending_stands()
    {
        var job = Guid.CreateVersion7();

        var plan = RecordingPlan.Make([Submitted(job), Cancelled(job), Succeeded(job)], new Dictionary<Guid, JobStream>());

        plan.Touched[job].Status.Status.ShouldBe(JobStatuses.Cancelled);
        plan.Dropped.Single().Why.ShouldBe(DropReason.AfterEnd);
        plan.Ended.Single().Event.ShouldBeOfType<V1.JobCancelled>();
    }

    [Fact]
    public void A_retry_begins_the_next_series_of_an_ended_job_and_late_events_of_the_earlier_series_change_nothing()
    {
        var job = Guid.CreateVersion7();
        var known = new Dictionary<Guid, JobStream> { [job] = Stream(Submitted(job), Cancelled(job)) };
        var lateFirstEnding = Succeeded(job);

        var plan = RecordingPlan.Make([Retried(job, 2), lateFirstEnding, Retried(job, 2), Retried(job, 4), InSeries(Succeeded(job), 2)], known);

        plan.Appended.Select(a => a.Event.GetType().Name).ShouldBe(["JobRetried", "JobSucceeded"]);
        plan.Appended.Select(a => a.Version).ShouldBe([3L, 4L]);
        plan.Dropped.Select(d => d.Why).ShouldBe([DropReason.AfterEnd, DropReason.Duplicate, DropReason.AfterEnd]);
        var status = plan.Touched[job].Status;
        (status.Status, status.CurrentSeries(), status.Attempts).ShouldBe((JobStatuses.Succeeded, 2, 1));
        plan.Ended.Single().Event.ShouldBeOfType<V1.JobSucceeded>().Series.ShouldBe(2);
    }

    [Fact]
    public void A_retry_of_a_job_that_has_not_ended_is_dropped()
    {
        var job = Guid.CreateVersion7();

        var plan = RecordingPlan.Make([Submitted(job), Retried(job, 2)], new Dictionary<Guid, JobStream>());

        plan.Dropped.Single().Why.ShouldBe(DropReason.AfterEnd);
        plan.Touched[job].Status.Status.ShouldBe(JobStatuses.Queued);
    }

    [Fact]
    public void An_event_of_a_job_without_a_recorded_submission_is_an_orphan()
    {
        var plan = RecordingPlan.Make([Succeeded(Guid.CreateVersion7())], new Dictionary<Guid, JobStream>());

        plan.Dropped.Single().Why.ShouldBe(DropReason.Orphan);
        plan.Appended.ShouldBeEmpty();
    }

    [Fact]
    public void Jobs_interleaved_in_a_run_keep_their_own_versions_in_log_order()
    {
        var (a, b) = (Guid.CreateVersion7(), Guid.CreateVersion7());

        var plan = RecordingPlan.Make([Submitted(a), Submitted(b), Started(b), Started(a), Succeeded(a)], new Dictionary<Guid, JobStream>());

        plan.Appended.Select(e => (e.StreamId, e.Version)).ShouldBe([(a, 1L), (b, 1L), (b, 2L), (a, 2L), (a, 3L)]);
        plan.Touched[b].Status.Status.ShouldBe(JobStatuses.Running);
    }

    [Fact]
    public void A_second_submission_of_a_job_is_a_duplicate_even_within_one_run()
    {
        var job = Guid.CreateVersion7();

        var plan = RecordingPlan.Make([Submitted(job), Submitted(job)], new Dictionary<Guid, JobStream>());

        plan.Started.ShouldBe([job]);
        plan.Dropped.Single().Why.ShouldBe(DropReason.Duplicate);
    }

    [Fact]
    public void A_job_with_a_webhook_and_no_filter_owes_one_call_for_its_ending()
    {
        var job = Guid.CreateVersion7();

        var plan = RecordingPlan.Make([Submitted(job, webhookEvents: null), Started(job), Succeeded(job)], new Dictionary<Guid, JobStream>());

        plan.WebhooksOwed().ShouldBe([new WebhookOwed(job, EventNames.JobSucceeded, "acme")]);
    }

    [Fact]
    public void A_job_asking_for_started_and_completed_owes_its_first_start_and_its_ending_once_each()
    {
        var job = Guid.CreateVersion7();
        LogEvent[] run = [Submitted(job, ["started", "completed"]), Started(job), AttemptFailed(job, attempt: 1), Started(job, attempt: 2), Succeeded(job)];

        var plan = RecordingPlan.Make(run, new Dictionary<Guid, JobStream>());

        plan.BeganRunning.ShouldBe([job]);
        plan.WebhooksOwed().ShouldBe([new WebhookOwed(job, EventNames.JobStarted, "acme"), new WebhookOwed(job, EventNames.JobSucceeded, "acme")]);
    }

    [Fact]
    public void A_short_run_whose_start_travels_on_its_ending_owes_the_start_and_only_what_the_filter_names()
    {
        var job = Guid.CreateVersion7();
        var ending = Log(job, new V1.JobSucceeded(job, 1, "w", "cpu", Now.AddMilliseconds(9), 4, 1, [], Start: new JobStart(Now.AddMilliseconds(5), 5, "local", false)));

        var plan = RecordingPlan.Make([Submitted(job, ["started"]), ending], new Dictionary<Guid, JobStream>());

        plan.WebhooksOwed().ShouldBe([new WebhookOwed(job, EventNames.JobStarted, "acme")]);
    }

    [Fact]
    public void A_start_recorded_in_an_earlier_run_is_not_owed_again_and_a_job_that_never_ran_owes_no_start()
    {
        var (ran, never, silent) = (Guid.CreateVersion7(), Guid.CreateVersion7(), Guid.CreateVersion7());
        var known = new Dictionary<Guid, JobStream> { [ran] = Stream(Submitted(ran, ["started", "completed"]), Started(ran)) };

        var plan = RecordingPlan.Make([Succeeded(ran), Submitted(never, ["started", "completed"]), Cancelled(never), Submitted(silent, ["started"], webhook: null), Started(silent)], known);

        plan.BeganRunning.ShouldBe([silent]);
        plan.WebhooksOwed().ShouldBe([new WebhookOwed(ran, EventNames.JobSucceeded, "acme"), new WebhookOwed(never, EventNames.JobCancelled, "acme")]);
    }

    [Fact]
    public void A_shadow_result_after_the_ending_is_recorded_once_and_changes_nothing()
    {
        var job = Guid.CreateVersion7();
        var known = new Dictionary<Guid, JobStream> { [job] = Stream(Submitted(job), Succeeded(job)) };
        var before = known[job].Status;

        var plan = RecordingPlan.Make([Shadow(job), Shadow(job)], known);

        plan.Appended.ShouldHaveSingleItem().Version.ShouldBe(3L);
        plan.Dropped.ShouldHaveSingleItem().Why.ShouldBe(DropReason.Duplicate);
        plan.Touched[job].Status.ShouldBe(before);
        plan.Ended.ShouldBeEmpty();
        plan.WebhooksOwed().ShouldBeEmpty();
    }

    private LogEvent Shadow(Guid job) => Log(job, new V1.JobShadowResult(job, "mlp-test", "1", "2", [], [], 4, 1, 5, "w", "cpu", Now.AddMilliseconds(20)));

    private LogEvent Submitted(Guid job) => Log(job, new V1.JobSubmitted(job, "acme", "mlp-test", "1", "local", "interactive", Now, "digest", 10, null));

    private LogEvent Submitted(Guid job, string[]? webhookEvents, string? webhook = "https://example.com/hook") =>
        Log(job, new V1.JobSubmitted(job, "acme", "mlp-test", "1", "local", "interactive", Now, "digest", 10, null, Webhook: webhook, WebhookEvents: webhookEvents));

    private LogEvent Started(Guid job, int attempt = 1) => Log(job, new V1.JobStarted(job, attempt, "w", "cpu", Now.AddMilliseconds(5), 5));

    private LogEvent AttemptFailed(Guid job, int attempt) =>
        Log(job, new V1.JobAttemptFailed(job, attempt, "w", "cpu", Now.AddMilliseconds(7), "transient", "try again", TimeSpan.FromMilliseconds(10)));

    private LogEvent Succeeded(Guid job) => Log(job, new V1.JobSucceeded(job, 1, "w", "cpu", Now.AddMilliseconds(9), 4, 1, []));

    private LogEvent Cancelled(Guid job) => Log(job, new V1.JobCancelled(job, Now.AddMilliseconds(1), "test"));

    private LogEvent Retried(Guid job, int series) => Log(job, new V1.JobRetried(job, series, "acme", "mlp-test", "local", "interactive", Now.AddSeconds(series), "key"));

    private LogEvent InSeries(LogEvent e, int series) => Log(e.StreamId, JobLifecycle.InSeries(e.Event, series));

    private LogEvent Log(Guid job, object @event) => new(job, JobLifecycle.EventId(@event), @event, ++_sequence);

    private static JobStream Stream(params LogEvent[] recorded)
    {
        var status = JobStatusProjection.Create((V1.JobSubmitted)recorded[0].Event);
        foreach (var e in recorded.Skip(1))
        {
            status = JobStatusProjection.Evolve(status, e.Event)!;
        }

        return new JobStream(recorded.Length, status, recorded.Select(e => e.EventId).ToHashSet());
    }
}
