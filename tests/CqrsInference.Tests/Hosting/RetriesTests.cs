using CqrsInference.Messaging;
using Microsoft.Extensions.Time.Testing;
using Polly;

namespace CqrsInference.Tests.Hosting;

/// <summary>Every retry schedule of the system (<see cref="Retries"/>), on a fake clock: how many tries, how long each wait, which failures.</summary>
public sealed class RetriesTests
{
    private readonly FakeTimeProvider _clock = new();
    private readonly List<RetryFailure> _failures = [];

    [Fact]
    public async Task Startup_tries_sixty_times_with_jittered_waits_growing_from_250_ms_to_3_s_then_throws()
    {
        var tries = 0;
        var pipeline = Retries.Startup(_ => true, _failures.Add, _clock);

        var error = await Should.ThrowAsync<TimeoutException>(Run(pipeline, () => throw new TimeoutException($"try {++tries}")));

        error.Message.ShouldBe("try 60");
        tries.ShouldBe(Retries.StartupTries);
        _failures.Select(f => f.Attempt).ShouldBe(Enumerable.Range(1, 59));
        _failures.ShouldAllBe(f => f.Delay > TimeSpan.Zero && f.Delay <= Retries.StartupMax);
        _failures[0].Delay.ShouldBeLessThan(TimeSpan.FromSeconds(1));
        _failures.Skip(10).ShouldAllBe(f => f.Delay == Retries.StartupMax);
        _failures.Take(3).Select(f => f.Delay).Distinct().Count().ShouldBe(3, "jittered: processes that failed together come back apart");
    }

    [Fact]
    public async Task A_failure_the_caller_does_not_handle_is_thrown_at_once()
    {
        var tries = 0;
        var pipeline = Retries.Startup(e => e is not InvalidOperationException, _failures.Add, _clock);

        await Should.ThrowAsync<InvalidOperationException>(Run(pipeline, () => throw new InvalidOperationException($"try {++tries}")));

        tries.ShouldBe(1);
        _failures.ShouldBeEmpty();
    }

    [Fact]
    public async Task Forever_keeps_trying_past_any_count_with_waits_capped_until_it_succeeds()
    {
        var tries = 0;
        var pipeline = Retries.Forever(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10), _ => true, f =>
        {
            _failures.Add(f);
            return ValueTask.CompletedTask;
        }, _clock);

        await Run(pipeline, () =>
        {
            if (++tries < 200)
            {
                throw new IOException("not yet");
            }
        });

        tries.ShouldBe(200);
        _failures.Count.ShouldBe(199);
        _failures.ShouldAllBe(f => f.Delay <= TimeSpan.FromSeconds(10));
        _failures[^1].Delay.ShouldBeGreaterThan(TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task Restart_waits_about_the_same_after_every_failure_however_many()
    {
        var tries = 0;
        var pipeline = Retries.Restart(TimeSpan.FromSeconds(1), _ => true, _failures.Add, _clock);

        await Run(pipeline, () =>
        {
            if (++tries <= 100)
            {
                throw new IOException("down");
            }
        });

        _failures.Count.ShouldBe(100);
        _failures.ShouldAllBe(f => f.Delay >= TimeSpan.FromSeconds(0.75) && f.Delay <= TimeSpan.FromSeconds(1.25));
        _failures.Select(f => f.Delay).Distinct().Count().ShouldBeGreaterThan(50);
    }

    [Fact]
    public async Task Contended_tries_again_at_once_and_returns_the_last_result()
    {
        var tries = 0;
        var pipeline = Retries.Contended<int?>(5, result => result is null);

        (await pipeline.ExecuteAsync(_ => ValueTask.FromResult(++tries < 3 ? null : (int?)tries))).ShouldBe(3);
        tries = 0;
        (await pipeline.ExecuteAsync(_ =>
        {
            tries++;
            return ValueTask.FromResult((int?)null);
        })).ShouldBeNull();
        tries.ShouldBe(5);
    }

    [Fact]
    public async Task Until_acquired_polls_a_holder_at_a_fixed_pace_and_backs_off_from_an_outage()
    {
        var answers = new Queue<Func<string?>>([() => null, () => null, () => throw new IOException("away"), () => throw new IOException("away"), () => "mine"]);
        var held = 0;
        var pipeline = Retries.UntilAcquired<string>(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(15), e => e is IOException, () => held++, _failures.Add, _clock);

        var lease = await Run(pipeline, () => answers.Dequeue()());

        lease.ShouldBe("mine");
        held.ShouldBe(2);
        _failures.Count.ShouldBe(2);
        _failures.ShouldAllBe(f => f.Delay <= TimeSpan.FromSeconds(15) && f.Exception is IOException);
    }

    [Fact]
    public async Task Cancelling_ends_the_wait_and_nothing_more_is_tried()
    {
        using var cts = new CancellationTokenSource();
        var tries = 0;
        var pipeline = Retries.Restart(TimeSpan.FromSeconds(30), _ => true, _ => cts.Cancel(), _clock);

        await Should.ThrowAsync<OperationCanceledException>(pipeline.ExecuteAsync(_ => ++tries > 0 ? throw new IOException("down") : ValueTask.CompletedTask, cts.Token).AsTask());

        tries.ShouldBe(1);
    }

    /// <summary>Runs <paramref name="step"/> through the pipeline, moving the fake clock on whenever it waits.</summary>
    private async Task Run(ResiliencePipeline pipeline, Action step)
    {
        var run = pipeline.ExecuteAsync(_ =>
        {
            step();
            return ValueTask.CompletedTask;
        }).AsTask();
        await Drive(run);
        await run;
    }

    private async Task<T?> Run<T>(ResiliencePipeline<T?> pipeline, Func<T?> step)
    {
        var run = pipeline.ExecuteAsync(_ => ValueTask.FromResult(step())).AsTask();
        await Drive(run);
        return await run;
    }

    private async Task Drive(Task run)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!run.IsCompleted && !cts.IsCancellationRequested)
        {
            _clock.Advance(TimeSpan.FromSeconds(1));
            await Task.WhenAny(run, Task.Delay(1, cts.Token));
        }
    }
}
