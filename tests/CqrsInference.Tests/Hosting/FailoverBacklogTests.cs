using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// The takeover's pure rules (<see cref="FailoverBacklog"/>, <see cref="CheckpointMap"/>) and the
/// message ids they read (<see cref="JobLifecycle.EndingOf"/>, <see cref="JobLifecycle.QueuedBy"/>),
/// without a server.
/// </summary>
public sealed class FailoverBacklogTests
{
    private static readonly Guid Job = Guid.NewGuid();
    private static readonly string Subject = $"log.0.jobs.east.mlp-test.normal.default.{Job:N}";

    [Fact]
    public void Message_ids_name_the_series_they_queue_and_end()
    {
        JobLifecycle.QueuedBy(Job.ToString()).ShouldBe((Job, 1));
        JobLifecycle.QueuedBy($"{Job}:retried:3").ShouldBe((Job, 3));
        JobLifecycle.EndingOf($"{Job}:terminal").ShouldBe((Job, 1));
        JobLifecycle.EndingOf($"{Job}:terminal:s2").ShouldBe((Job, 2));
        JobLifecycle.JobEndedBy($"{Job}:terminal:s2").ShouldBeNull("the first series' reader does not take a later series' ending");
        JobLifecycle.EndingOf($"{Job}:started:1").ShouldBeNull();
        JobLifecycle.QueuedBy($"{Job}:served").ShouldBeNull();
        JobLifecycle.EndingOf($"{Job}:terminal:sx").ShouldBeNull();
    }

    [Fact]
    public void A_job_whose_only_series_ended_is_purged_whole()
    {
        var backlog = Read(Job.ToString(), $"{Job}:terminal");

        backlog.Ended(Job).ShouldBeTrue();
        backlog.Purges().ShouldBe([(Subject, 0UL, true)]);
    }

    [Fact]
    public void A_job_not_ended_stays_in_the_backlog()
    {
        var backlog = Read(Job.ToString());

        backlog.Purges().ShouldBeEmpty();
        backlog.Jobs.ShouldBe(1);
    }

    [Fact]
    public void A_retried_job_whose_later_series_ended_is_purged_whole()
    {
        var backlog = Read(Job.ToString(), $"{Job}:terminal", $"{Job}:retried:2", $"{Job}:terminal:s2");

        backlog.Purges().ShouldBe([(Subject, 0UL, true)]);
    }

    [Fact]
    public void A_retried_job_whose_later_series_has_not_ended_keeps_only_that_series_queued()
    {
        var backlog = Read(Job.ToString(), $"{Job}:terminal", $"{Job}:retried:2");

        backlog.Ended(Job).ShouldBeFalse("the first series' ending does not end the retry");
        backlog.Purges().ShouldBe([(Subject, 1UL, false)]);
        backlog.QueueMessages.ShouldBe(2);
    }

    [Fact]
    public void A_checkpoint_moves_to_the_copy_of_the_last_message_at_or_below_it()
    {
        // The lost log held 5..9 (1..4 aged out); the mirror lacked 8; the recorders stood at 3, 7 and 9.
        var map = new CheckpointMap([3, 7, 9]);
        var copy = 0UL;
        foreach (var lost in new ulong[] { 5, 6, 7, 9 })
        {
            map.Copied(lost, ++copy);
        }

        map[3].ShouldBe(0UL, "nothing it recorded was copied: everything in the copy is recorded (again, absorbed by the dedupe)");
        map[7].ShouldBe(3UL);
        map[9].ShouldBe(4UL);
    }

    [Fact]
    public void A_checkpoint_stops_where_another_publisher_came_in_between_the_copied_messages()
    {
        // The survivor's API published at 3 while the lost log's 1..4 were copied to 1, 2, 4, 5.
        var map = new CheckpointMap([1, 4]);
        map.Copied(1, 1);
        map.Copied(2, 2);
        map.Copied(3, 4);
        map.Copied(4, 5);

        map[1].ShouldBe(1UL);
        map[4].ShouldBe(2UL, "the message at 3 was never recorded: the recorder must read it");
    }

    private static FailoverBacklog Read(params string[] ids)
    {
        var backlog = new FailoverBacklog();
        foreach (var id in ids)
        {
            backlog.Saw(id.Contains(":terminal", StringComparison.Ordinal) ? $"log.0.events.east.mlp-test.{Job:N}" : Subject, id);
        }

        return backlog;
    }
}
