using CqrsInference.Projections;
using NATS.Client.Core;

namespace CqrsInference.Tests.Recording;

/// <summary>
/// <see cref="Outages.AskWithinAsync{T}"/>: the one bound every "ask the store, else answer without
/// it" call uses (key checks, reads of jobs held in memory, idempotency look-ups).
/// </summary>
public sealed class BoundedAnswerTests
{
    [Fact]
    public async Task A_store_that_hangs_is_unanswered_at_the_bound_and_its_call_is_cancelled()
    {
        var cancelled = new TaskCompletionSource();
        var took = System.Diagnostics.Stopwatch.StartNew();

        var answer = await Outages.AskWithinAsync<int>(async t =>
        {
            t.Register(cancelled.SetResult);
            await Task.Delay(Timeout.Infinite, CancellationToken.None); // ignores the cancellation, as a hung driver can
            return 1;
        }, TimeSpan.FromMilliseconds(200), CancellationToken.None);

        answer.Answered.ShouldBeFalse();
        answer.Unanswered.ShouldBe("no answer within 0.2 s");
        took.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(5));
        // The bound's own callback may answer before the call's runs (a token's callbacks run last registered first).
        await cancelled.Task.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task An_outage_is_unanswered_with_its_reason_and_an_answer_of_nothing_is_an_answer()
    {
        var away = await Outages.AskWithinAsync<string?>(_ => throw new NatsNoRespondersException(), TimeSpan.FromSeconds(5), CancellationToken.None);
        away.Answered.ShouldBeFalse();
        away.Unanswered.ShouldNotBeNullOrEmpty();

        var none = await Outages.AskWithinAsync(_ => Task.FromResult<string?>(null), TimeSpan.FromSeconds(5), CancellationToken.None);
        none.Answered.ShouldBeTrue();
        none.Value.ShouldBeNull();
    }

    [Fact]
    public async Task A_fault_that_is_no_outage_and_the_callers_own_cancellation_are_thrown()
    {
        await Should.ThrowAsync<InvalidOperationException>(() =>
            Outages.AskWithinAsync<int>(_ => throw new InvalidOperationException("a bug"), TimeSpan.FromSeconds(5), CancellationToken.None));

        using var caller = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Should.ThrowAsync<OperationCanceledException>(() =>
            Outages.AskWithinAsync(async t =>
            {
                await Task.Delay(Timeout.Infinite, t);
                return 1;
            }, TimeSpan.FromSeconds(30), caller.Token));
    }
}
