using CqrsInference.Projections.Audit;

namespace CqrsInference.Tests.Audit;

/// <summary>The sealer's high-water mark and its watched gaps, as pure state.</summary>
public sealed class SealFrontierTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(5);

    [Fact]
    public void The_first_round_looks_back_a_bounded_window_and_later_rounds_start_at_the_mark()
    {
        var frontier = new SealFrontier(Window, initialLookBack: 100, maxGaps: 10);

        frontier.ScanFrom(highestSealed: 1_000_000).ShouldBe(999_900);
        frontier.ScanFrom(highestSealed: 40).ShouldBe(0);

        frontier.Advance(1_000_000, [], [], T0);
        frontier.ScanFrom(highestSealed: 1_000_500).ShouldBe(1_000_000);
    }

    [Fact]
    public void A_gap_is_probed_until_it_is_sealed()
    {
        var frontier = new SealFrontier(Window, 100, 10);
        frontier.Advance(10, [4, 7], [], T0);

        frontier.Probe([12], T0.AddSeconds(1)).ShouldBe([4, 7, 12]);

        frontier.Advance(15, [12], sealedNow: [7, 13, 14, 15], T0.AddSeconds(1));
        frontier.Probe([], T0.AddSeconds(2)).ShouldBe([4, 12]);
        frontier.Mark.ShouldBe(15);
    }

    [Fact]
    public void A_gap_is_given_up_once_its_window_has_passed()
    {
        var frontier = new SealFrontier(Window, 100, 10);
        frontier.Advance(10, [4], [], T0);
        frontier.Advance(20, [17], [], T0.AddMinutes(3));

        frontier.Probe([], T0.AddMinutes(5)).ShouldBe([17]);

        frontier.Advance(20, [], [], T0.AddMinutes(5));
        frontier.OpenGaps.ShouldBe(1);
        frontier.Advance(20, [], [], T0.AddMinutes(8));
        frontier.OpenGaps.ShouldBe(0);
    }

    [Fact]
    public void Watched_gaps_are_capped_by_giving_up_the_lowest()
    {
        var frontier = new SealFrontier(Window, 100, maxGaps: 3);

        frontier.Advance(10, [1, 2, 3, 4, 5], [], T0);

        frontier.Probe([], T0).ShouldBe([3, 4, 5]);
    }

    [Fact]
    public void The_mark_never_moves_back()
    {
        var frontier = new SealFrontier(Window, 100, 10);
        frontier.Advance(50, [], [], T0);

        frontier.Advance(40, [], [], T0);

        frontier.Mark.ShouldBe(50);
    }
}
