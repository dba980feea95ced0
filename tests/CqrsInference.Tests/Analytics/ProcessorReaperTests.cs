using CqrsInference.Commands.Jobs;
using CqrsInference.Projections;
using CqrsInference.Projections.Analytics;
using CqrsInference.Tests.Infrastructure;
using Marten;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace CqrsInference.Tests.Analytics;

/// <summary>
/// The processor reaper on a store of the test's own, its clock a fake: silence is judged only a
/// whole timeout after the reaper starts and after PostgreSQL last failed it, when what was
/// heartbeated meanwhile has had time to be recorded.
/// </summary>
public sealed class ProcessorReaperTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));
    private DocumentStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = DocumentStore.For(o => o.Configure(TestEnvironment.Postgres, TestEnvironment.NewSchema()));
        await _store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
    }

    public Task DisposeAsync()
    {
        _store.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_silent_processor_is_closed_only_a_whole_timeout_after_the_start_and_after_the_store_failed()
    {
        await OnlineAsync("quiet-1", _clock.GetUtcNow() - TimeSpan.FromMinutes(5));
        var reaper = new ProcessorReaper(_store, new AnalyticsOptions { ProcessorTimeout = Timeout }, _clock, NullLogger<ProcessorReaper>.Instance);

        (await reaper.ReapAsync(default)).ShouldBe(0, "just started: heartbeats may still be on their way to the store");
        _clock.Advance(Timeout);
        reaper.StoreFailed();
        _clock.Advance(Timeout - TimeSpan.FromSeconds(1));
        (await reaper.ReapAsync(default)).ShouldBe(0, "PostgreSQL failed the reaper less than a timeout ago");
        _clock.Advance(TimeSpan.FromSeconds(1));
        (await reaper.ReapAsync(default)).ShouldBe(1);

        await using var session = _store.QuerySession();
        var status = (await session.Query<ProcessorStatus>().ToListAsync()).ShouldHaveSingleItem();
        (status.Online, status.OfflineReason).ShouldBe((false, "timeout"));
    }

    private async Task OnlineAsync(string worker, DateTimeOffset at)
    {
        await using var session = _store.LightweightSession();
        session.Events.StartStream(DeterministicGuid.Create(Guid.Empty, worker),
            new V1.ProcessorOnline(worker, "local", "cpu", 1, ["mlp-test"], at));
        await session.SaveChangesAsync();
    }
}
