using CqrsInference.Api.Hosting;
using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Edge;

namespace CqrsInference.Tests.Edge;

/// <summary>The pure parts of an edge site: segmentation, message and event ids, the checkpoint, the role.</summary>
public sealed class EdgeLogicTests
{
    private const int Window = SpeechDetector.WindowSamples;

    [Fact]
    public void Speech_starts_at_the_threshold_rides_out_short_dips_and_ends_after_the_minimum_silence()
    {
        // 2 silent windows, 10 of speech with a dip to 0.4 (above threshold − 0.15), 4 silent,
        // a 2-window blip (shorter than the minimum speech), 5 silent, then speech to the end.
        float[] p =
        [
            0.1f, 0.1f,
            0.9f, 0.9f, 0.9f, 0.4f, 0.9f, 0.9f, 0.9f, 0.9f, 0.9f, 0.9f,
            0.1f, 0.1f, 0.1f, 0.1f,
            0.9f, 0.9f,
            0.1f, 0.1f, 0.1f, 0.1f, 0.1f,
            0.8f, 0.8f, 0.8f, 0.8f, 0.8f, 0.8f, 0.8f, 0.8f, 0.8f, 0.8f, 0.8f,
        ];

        var segments = SpeechDetector.Segments(p, threshold: 0.5f, minSilenceSamples: 1600, minSpeechSamples: 4000);

        segments.Count.ShouldBe(2);
        (segments[0].StartSample, segments[0].EndSample).ShouldBe((2 * Window, 12 * Window));
        (segments[1].StartSample, segments[1].EndSample).ShouldBe((23 * Window, 34 * Window));
        segments[1].MeanProbability.ShouldBe(0.8, 1e-6);
        segments[0].StartSeconds.ShouldBe(0.064);
    }

    [Fact]
    public void Silence_alone_has_no_segments() =>
        SpeechDetector.Segments(new float[100], 0.5f, 1600, 4000).ShouldBeEmpty();

    [Fact]
    public void A_detection_made_again_later_has_the_same_message_and_event_id_and_another_segment_does_not()
    {
        var first = new V1.EdgeSpeechDetected("site1", "a.wav", 0, 0.1, 1.2, 0.9, DateTimeOffset.UnixEpoch);
        var again = first with { DetectedAt = DateTimeOffset.UnixEpoch.AddHours(3), MeanProbability = 0.91 };
        var next = first with { Segment = 1 };

        EdgeEventNames.MessageId(again).ShouldBe(EdgeEventNames.MessageId(first));
        EdgeEventNames.EventId(again).ShouldBe(EdgeEventNames.EventId(first));
        EdgeEventNames.EventId(next).ShouldNotBe(EdgeEventNames.EventId(first));
        EdgeEventNames.EventId(first with { Site = "site2" }).ShouldNotBe(EdgeEventNames.EventId(first));
    }

    [Theory]
    [InlineData("site1", true)]
    [InlineData("north-yard_2", true)]
    [InlineData("", false)]
    [InlineData("a.b", false)]
    [InlineData("a b", false)]
    [InlineData("a>", false)]
    public void Site_names_are_plain_tokens(string site, bool valid) => EdgeEventNames.IsValidSite(site).ShouldBe(valid);

    [Fact]
    public void The_checkpoint_survives_a_reopen_and_ignores_a_line_torn_by_a_crash()
    {
        var path = Path.Combine(Path.GetTempPath(), "cqrsi-checkpoint-" + Guid.NewGuid().ToString("N")[..8], "done.log");
        try
        {
            var checkpoint = EdgeCheckpoint.Open(path);
            checkpoint.MarkDone("a.wav");
            checkpoint.MarkDone("b.wav");
            checkpoint.MarkDone("a.wav");
            File.AppendAllText(path, "c.w");

            var reopened = EdgeCheckpoint.Open(path);

            reopened.Count.ShouldBe(2);
            reopened.IsDone("a.wav").ShouldBeTrue();
            reopened.IsDone("c.w").ShouldBeFalse();
            reopened.MarkDone("c.wav");
            File.ReadAllText(path).ShouldBe("a.wav\nb.wav\nc.wav\n");
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }

    [Fact]
    public void Items_an_earlier_version_left_in_the_input_folder_are_moved_out_once_and_a_name_used_again_is_its_next_generation()
    {
        InTemporaryFolder("cqrsi-edge-input-", root =>
        {
            var (input, state) = (Path.Combine(root, "input"), Path.Combine(root, "state"));
            Directory.CreateDirectory(input);
            var checkpoint = EdgeCheckpoint.Open(Path.Combine(state, "done.log"));
            checkpoint.MarkDone("old.wav");
            File.WriteAllText(Path.Combine(input, "old.wav"), "done before");
            File.WriteAllText(Path.Combine(input, "new.wav"), "waiting");

            var folder = EdgeInput.Open(input, state, checkpoint, TimeSpan.Zero);

            Pending(folder).ShouldBe([new RawItem(Path.Combine(input, "new.wav"), "new.wav")]);
            File.Exists(Path.Combine(input, "done", "old.wav")).ShouldBeTrue();

            // From now on a done name in the input folder is a new file: its next generation.
            File.WriteAllText(Path.Combine(input, "old.wav"), "a new recording");
            Pending(folder).Select(i => i.ItemId).ShouldBe(["new.wav", "old~2.wav"]);
            folder.Done(Pending(folder)[1]);
            File.WriteAllText(Path.Combine(input, "old.wav"), "and another");
            Pending(EdgeInput.Open(input, state, EdgeCheckpoint.Open(Path.Combine(state, "done.log")), TimeSpan.Zero)).Select(i => i.ItemId).ShouldBe(["new.wav", "old~3.wav"]);
            EdgeInput.ItemIdOf("a\r\nb\u007f.wav").ShouldBe("a%0D%0Ab%7F.wav");
        });
    }

    [Fact]
    public void A_file_is_taken_once_it_has_settled_in_name_order_and_one_written_again_waits_again()
    {
        InTemporaryFolder("cqrsi-edge-settle-", root =>
        {
            var (input, state) = (Path.Combine(root, "input"), Path.Combine(root, "state"));
            Directory.CreateDirectory(input);
            var folder = EdgeInput.Open(input, state, EdgeCheckpoint.Open(Path.Combine(state, "done.log")), TimeSpan.FromSeconds(1));
            var t = new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
            Write(input, "a.wav", "first part", t);
            Write(input, "b.wav", "whole long ago", t.AddHours(-1));

            // a.wav was written half a second ago: not yet, and b.wav after it in name order waits too.
            folder.Pending(t.AddSeconds(0.5), out var waiting).ShouldBeEmpty();
            waiting.ShouldBe(2);
            folder.HeldBack.ShouldBe(new Unsettled("a.wav", t.AddSeconds(0.5)));
            Names(folder.Pending(t.AddSeconds(1.2), out _)).ShouldBe(["a.wav", "b.wav"]);

            // A write time in the future (another clock): taken once seen unchanged for a second;
            // written again meanwhile, it waits a second from then.
            Write(input, "c.wav", "part", t.AddDays(1));
            Names(folder.Pending(t.AddSeconds(2), out _)).ShouldBe(["a.wav", "b.wav"]);
            Write(input, "c.wav", "part and more", t.AddDays(1).AddSeconds(1));
            Names(folder.Pending(t.AddSeconds(2.5), out _)).ShouldBe(["a.wav", "b.wav"]);
            folder.HeldBack.ShouldBe(new Unsettled("c.wav", t.AddSeconds(2)), "first seen before it changed: how long it has held the rest back");
            Names(folder.Pending(t.AddSeconds(3.2), out _)).ShouldBe(["a.wav", "b.wav"]);
            Names(folder.Pending(t.AddSeconds(3.6), out _)).ShouldBe(["a.wav", "b.wav", "c.wav"]);

            // A write time long past (a share whose clock is behind) is not enough on its own: the
            // file must be seen unchanged at two looks, so one still being written is not taken.
            Write(input, "d.wav", "part", t.AddHours(-1));
            Names(folder.Pending(t.AddSeconds(4), out _)).ShouldBe(["a.wav", "b.wav", "c.wav"]);
            Write(input, "d.wav", "part and more", t.AddHours(-1).AddSeconds(1));
            Names(folder.Pending(t.AddSeconds(4.25), out _)).ShouldBe(["a.wav", "b.wav", "c.wav"]);
            Names(folder.Pending(t.AddSeconds(4.5), out _)).ShouldBe(["a.wav", "b.wav", "c.wav", "d.wav"]);
        });

        static void Write(string input, string name, string text, DateTimeOffset written)
        {
            File.WriteAllText(Path.Combine(input, name), text);
            File.SetLastWriteTimeUtc(Path.Combine(input, name), written.UtcDateTime);
        }

        static IEnumerable<string> Names(List<RawItem> items) => items.Select(i => i.ItemId);
    }

    [Fact]
    public void The_stream_mark_is_never_below_where_publishes_can_have_landed_acknowledged_or_not_and_survives_a_reopen()
    {
        InTemporaryFolder("cqrsi-edge-mark-", state =>
        {
            var mark = EdgeStreamMark.Open(state);
            mark.Mark.ShouldBe(0UL);

            // The stream is at 10; three events go out: the mark moves past 13, a step ahead.
            mark.Acknowledged(10);
            mark.Reserve(3);
            mark.Mark.ShouldBe(13 + EdgeStreamMark.Step);
            mark.Acknowledged(13);

            // Publishes whose acknowledgements were lost still count: the bound grows by what was
            // reserved, and the mark is written again before the bound passes it.
            mark.Reserve(1);
            mark.Reserve((int)EdgeStreamMark.Step - 1);
            mark.Mark.ShouldBe(13 + EdgeStreamMark.Step);
            mark.Reserve(1);
            mark.Mark.ShouldBe(14 + EdgeStreamMark.Step + EdgeStreamMark.Step);
            EdgeStreamMark.Open(state).Mark.ShouldBe(mark.Mark);

            File.WriteAllText(Path.Combine(state, "stream-mark"), "garbage");
            Should.Throw<InvalidDataException>(() => EdgeStreamMark.Open(state)).Message.ShouldContain("not a sequence number");
        });
    }

    [Fact]
    public void The_marks_directory_is_flushed_by_the_operating_system_and_one_that_cannot_be_says_why()
    {
        InTemporaryFolder("cqrsi-edge-dirsync-", state =>
        {
            // The rename that puts a new mark in place is durable only once its directory is on disk:
            // the flush is a real fsync of the directory (a missing one is refused by the system).
            DirectorySync.Flush(state);
            Should.Throw<IOException>(() => DirectorySync.Flush(Path.Combine(state, "missing"))).Message.ShouldContain("Cannot open");
        });
    }

    /// <summary>Runs <paramref name="test"/> in a new temporary folder, removed afterwards.</summary>
    private static void InTemporaryFolder(string prefix, Action<string> test)
    {
        var folder = Directory.CreateTempSubdirectory(prefix).FullName;
        try
        {
            test(folder);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static List<RawItem> Pending(EdgeInput folder) => folder.Pending(DateTimeOffset.UtcNow, out _);

    [Fact]
    public void The_edge_role_runs_alone()
    {
        Roles.Parse("edge").ShouldBe(new Roles(Api: false, Processor: false, Projections: false, Edge: true));
        Should.Throw<InvalidOperationException>(() => Roles.Parse("edge,projections")).Message.ShouldContain("edge runs alone");
    }
}
