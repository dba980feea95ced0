using CqrsInference.Commands.Jobs;

namespace CqrsInference.Tests.Jobs.Lifecycle;

/// <summary>The lifecycle rules, exhaustively: every status, every event type, every pair.</summary>
public sealed class JobLifecycleTests
{
    private static readonly Guid Job = new("0192f1a4-7b1c-7cde-9f00-1234567890ab");
    private static readonly DateTimeOffset At = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
    private static readonly string[] TerminalStatuses = [JobStatuses.Succeeded, JobStatuses.Failed, JobStatuses.Cancelled, JobStatuses.Expired];

    /// <summary>One event of every job lifecycle type, for <see cref="Job"/>.</summary>
    private static readonly IReadOnlyList<object> Events =
    [
        new V1.JobSubmitted(Job, "t", "m", "1", "local", "interactive", At, "digest", 10, null),
        new V1.JobStarted(Job, 1, "w", "cpu", At, 1.5),
        new V1.JobAttemptFailed(Job, 1, "w", "cpu", At, "code", "reason", TimeSpan.FromSeconds(1)),
        new V1.JobSucceeded(Job, 1, "w", "cpu", At, 2.0, 1, []),
        new V1.JobFailed(Job, 1, "w", "cpu", At, "code", "reason", DeadLettered: false),
        new V1.JobCancelled(Job, At, "key"),
        new V1.JobExpired(Job, At, At, "w"),
        new V1.JobRetried(Job, 2, "t", "m", "local", "interactive", At, "key"),
    ];

    public static TheoryData<object> JobEvents() => new(Events);

    [Fact]
    public void Every_job_event_type_of_the_wire_is_covered_here()
    {
        var covered = Events.Select(EventNames.Of).ToHashSet();
        // A shadow run's result is about a job but no step of its lifecycle: its rules are below.
        EventNames.Types.Where(t => !t.Value.Name.StartsWith("Processor", StringComparison.Ordinal) && t.Key != EventNames.JobShadowResult)
            .Select(t => t.Key).ShouldBe(covered, ignoreOrder: true);
    }

    [Fact]
    public void A_shadow_result_changes_no_job_in_any_status_and_has_one_id_per_series_and_shadow_version()
    {
        var shadow = new V1.JobShadowResult(Job, "m", "1", "2", [], [], 2, 1, 3, "w", "cpu", At);

        JobLifecycle.IsShadow(shadow).ShouldBeTrue();
        JobLifecycle.IsTerminal(shadow).ShouldBeFalse();
        Events.ShouldAllBe(e => !JobLifecycle.IsShadow(e));
        JobStatuses.All.ShouldAllBe(status => !JobLifecycle.Changes(status, 1, shadow));
        EventNames.JobIdOf(shadow).ShouldBe(Job);
        JobLifecycle.MessageId(shadow).ShouldBe($"{Job}:shadow:2");
        JobLifecycle.MessageId(JobLifecycle.InSeries(shadow, 2)).ShouldBe($"{Job}:shadow:2:s2");
        new[] { shadow, shadow with { ShadowVersion = "3" }, (V1.JobShadowResult)JobLifecycle.InSeries(shadow, 2) }
            .Select(JobLifecycle.EventId).Concat(Events.Select(JobLifecycle.EventId)).Distinct().Count().ShouldBe(Events.Count + 3);
        JobLifecycle.EventId(shadow with { At = At.AddHours(1), Worker = "other" }).ShouldBe(JobLifecycle.EventId(shadow));
    }

    [Theory]
    [MemberData(nameof(JobEvents))]
    public void An_event_ends_its_job_exactly_when_the_status_it_leads_to_is_terminal(object @event)
    {
        var status = JobLifecycle.StatusAfter(@event);

        JobStatuses.All.ShouldContain(status);
        JobLifecycle.IsTerminal(@event).ShouldBe(JobLifecycle.IsTerminal(status));
        JobLifecycle.IsTerminalEvent(EventNames.Of(@event)).ShouldBe(JobLifecycle.IsTerminal(status));
    }

    [Theory]
    [MemberData(nameof(JobEvents))]
    public void An_event_leads_to_the_same_status_known_by_its_wire_name_alone(object @event) =>
        JobLifecycle.StatusAfter(EventNames.Of(@event)).ShouldBe(JobLifecycle.StatusAfter(@event));

    [Fact]
    public void A_wire_name_that_is_no_job_event_leads_to_no_status()
    {
        JobLifecycle.StatusAfter((string?)null).ShouldBeNull();
        JobLifecycle.StatusAfter(EventNames.ProcessorHeartbeat).ShouldBeNull();
        JobLifecycle.StatusAfter("v9.unknown").ShouldBeNull();
    }

    [Fact]
    public void Exactly_four_statuses_are_terminal()
    {
        JobStatuses.All.Where(JobLifecycle.IsTerminal).ShouldBe(TerminalStatuses, ignoreOrder: true);
        JobLifecycle.IsTerminalEvent(null).ShouldBeFalse();
        JobLifecycle.IsTerminalEvent(EventNames.ProcessorHeartbeat).ShouldBeFalse();
    }

    [Theory]
    [MemberData(nameof(JobEvents))]
    public void Only_a_retry_for_the_next_series_changes_a_job_that_has_ended_and_every_other_event_but_the_submission_changes_its_own_series(object @event)
    {
        foreach (var status in JobStatuses.All)
        {
            foreach (var series in new[] { 1, 2 })
            {
                var expected = @event switch
                {
                    V1.JobSubmitted => false,
                    V1.JobRetried r => JobLifecycle.IsTerminal(status) && r.Series == series + 1,
                    _ => !JobLifecycle.IsTerminal(status) && series == 1,
                };
                JobLifecycle.Changes(status, series, @event).ShouldBe(expected, $"{status} in series {series} + {EventNames.Of(@event)}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(JobEvents))]
    public void The_first_series_keeps_the_ids_and_the_json_recorded_before_retries_existed(object @event)
    {
        var first = JobLifecycle.InSeries(@event, 1);

        first.ShouldBe(@event);
        JobLifecycle.MessageId(first).ShouldBe(JobLifecycle.MessageId(@event));
        JobLifecycle.EventId(first).ShouldBe(JobLifecycle.EventId(@event));
        if (@event is not V1.JobRetried)
        {
            System.Text.Json.JsonSerializer.Serialize(first, first.GetType(), Commands.WireJson.Default).ShouldNotContain("\"series\"");
        }
    }

    [Theory]
    [MemberData(nameof(JobEvents))]
    public void Each_later_series_has_ids_of_its_own_so_its_events_are_not_dropped_as_duplicates(object @event)
    {
        if (@event is V1.JobSubmitted or V1.JobRetried)
        {
            return;
        }

        var (second, third) = (JobLifecycle.InSeries(@event, 2), JobLifecycle.InSeries(@event, 3));

        JobLifecycle.SeriesOf(second).ShouldBe(2);
        new[] { @event, second, third }.Select(JobLifecycle.MessageId).Distinct().Count().ShouldBe(3);
        new[] { @event, second, third }.Select(JobLifecycle.EventId).Distinct().Count().ShouldBe(3);
        JobLifecycle.EventId(second).ShouldBe(JobLifecycle.EventId(JobLifecycle.InSeries(@event, 2)));
    }

    [Fact]
    public void Every_ending_of_a_series_shares_one_message_id_and_a_retry_has_one_per_series()
    {
        Events.Where(JobLifecycle.IsTerminal).Select(e => JobLifecycle.MessageId(JobLifecycle.InSeries(e, 2))).Distinct().ShouldHaveSingleItem().ShouldBe($"{Job}:terminal:s2");
        var retried = Events.OfType<V1.JobRetried>().Single();
        JobLifecycle.MessageId(retried).ShouldBe($"{Job}:retried:2");
        JobLifecycle.EventId(retried).ShouldNotBe(JobLifecycle.EventId(retried with { Series = 3 }));
        var command = new JobCommand(Job, "t", "m", "1", "local", "batch", At, "d", [], null);
        JobLifecycle.QueueMessageId(command).ShouldBe(JobLifecycle.SubmissionMessageId(Job));
        JobLifecycle.QueueMessageId(command with { Series = 2 }).ShouldBe(JobLifecycle.MessageId(retried));
        command.ToLogged(10).ShouldBeOfType<V1.JobSubmitted>();
        (command with { Series = 2, RetriedAt = At, RetriedBy = "key" }).ToLogged(10).ShouldBeOfType<V1.JobRetried>().Series.ShouldBe(2);
    }

    [Fact]
    public void Every_ending_of_a_job_shares_one_message_id_so_the_log_keeps_only_the_first()
    {
        var ids = Events.Where(JobLifecycle.IsTerminal).Select(JobLifecycle.MessageId).Distinct().ToList();

        ids.ShouldHaveSingleItem().ShouldBe($"{Job}:terminal");
    }

    [Fact]
    public void Starts_and_failed_attempts_have_a_message_id_per_attempt()
    {
        var first = new V1.JobStarted(Job, 1, "w", "cpu", At, 0);

        JobLifecycle.MessageId(first).ShouldNotBe(JobLifecycle.MessageId(first with { Attempt = 2 }));
        JobLifecycle.MessageId(first with { Worker = "other", StartedAt = At.AddSeconds(1) }).ShouldBe(JobLifecycle.MessageId(first));
        var failed = new V1.JobAttemptFailed(Job, 1, "w", "cpu", At, "c", "r", TimeSpan.Zero);
        JobLifecycle.MessageId(failed).ShouldNotBe(JobLifecycle.MessageId(failed with { Attempt = 2 }));
        JobLifecycle.MessageId(failed).ShouldNotBe(JobLifecycle.MessageId(first));
    }

    [Fact]
    public void The_submission_is_published_under_the_job_id()
    {
        JobLifecycle.MessageId(Events.OfType<V1.JobSubmitted>().Single()).ShouldBe(Job.ToString());
        JobLifecycle.SubmissionMessageId(Job).ShouldBe(Job.ToString());
    }

    [Fact]
    public void Processor_events_have_a_message_id_per_worker_kind_and_moment()
    {
        var beat = new V1.ProcessorHeartbeat("w1", "local", "cpu", 1, At, 10, 1);

        JobLifecycle.MessageId(beat).ShouldNotBe(JobLifecycle.MessageId(beat with { At = At.AddSeconds(10) }));
        JobLifecycle.MessageId(beat).ShouldNotBe(JobLifecycle.MessageId(beat with { WorkerId = "w2" }));
        JobLifecycle.MessageId(beat).ShouldNotBe(JobLifecycle.MessageId(new V1.ProcessorOffline("w1", At, "shutdown")));
        JobLifecycle.MessageId(beat).ShouldBe(JobLifecycle.MessageId(beat with { BusySeconds = 5 }));
    }

    [Theory]
    [MemberData(nameof(JobEvents))]
    public void Recorded_ids_depend_on_what_the_event_is_about_not_on_when_it_was_made(object @event)
    {
        JobLifecycle.EventId(@event).ShouldBe(JobLifecycle.EventId(@event));
        JobLifecycle.EventId(@event).ShouldNotBe(JobLifecycle.EventId(Retarget(@event, Guid.NewGuid())));
    }

    [Fact]
    public void Recorded_ids_of_every_event_type_of_a_job_differ()
    {
        Events.Select(JobLifecycle.EventId).Distinct().Count().ShouldBe(Events.Count);
    }

    [Fact]
    public void Recorded_ids_keep_the_form_the_history_was_recorded_with()
    {
        // Events already in stores were recorded under these ids; a change here would record a
        // redelivered event a second time.
        var submitted = Events.OfType<V1.JobSubmitted>().Single();
        JobLifecycle.EventId(submitted).ShouldBe(DeterministicGuid.ForEvent(Job, EventNames.JobSubmitted, 0));
        JobLifecycle.SubmissionEventId(Job).ShouldBe(JobLifecycle.EventId(submitted));
        JobLifecycle.EventId(new V1.JobStarted(Job, 3, "w", "cpu", At, 0)).ShouldBe(DeterministicGuid.ForEvent(Job, EventNames.JobStarted, 3));
        var offline = new V1.ProcessorOffline("w1", At, "timeout");
        JobLifecycle.EventId(offline).ShouldBe(DeterministicGuid.Create(EventNames.ProcessorStreamId("w1"), $"{EventNames.ProcessorOffline}\n{At.UtcTicks}"));
    }

    [Fact]
    public void Only_a_failure_after_the_last_delivery_is_dead_lettered()
    {
        var failed = new V1.JobFailed(Job, 5, "w", "cpu", At, "c", "r", DeadLettered: true);

        JobLifecycle.IsDeadLettered(failed).ShouldBeTrue();
        JobLifecycle.IsDeadLettered(failed with { DeadLettered = false }).ShouldBeFalse();
        Events.Where(JobLifecycle.IsDeadLettered).ShouldBeEmpty();
    }

    private static object Retarget(object @event, Guid job) => @event switch
    {
        V1.JobSubmitted e => e with { JobId = job },
        V1.JobStarted e => e with { JobId = job },
        V1.JobAttemptFailed e => e with { JobId = job },
        V1.JobSucceeded e => e with { JobId = job },
        V1.JobFailed e => e with { JobId = job },
        V1.JobCancelled e => e with { JobId = job },
        V1.JobExpired e => e with { JobId = job },
        V1.JobRetried e => e with { JobId = job },
        _ => throw new ArgumentException("not a job event"),
    };
}
