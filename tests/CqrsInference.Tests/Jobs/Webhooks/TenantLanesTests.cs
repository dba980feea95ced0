using CqrsInference.Projections.Webhooks;

namespace CqrsInference.Tests.Jobs.Webhooks;

/// <summary>How many webhook calls run at once, per tenant and overall.</summary>
public sealed class TenantLanesTests
{
    private static readonly TimeSpan Heartbeat = TimeSpan.FromMilliseconds(20);

    [Fact]
    public async Task A_tenant_at_its_limit_waits_while_another_tenant_goes_ahead()
    {
        var lanes = new TenantLanes(perTenant: 2, overall: 3);
        using var a1 = await lanes.EnterAsync("a", Heartbeat, () => Task.CompletedTask, CancellationToken.None);
        var a2 = await lanes.EnterAsync("a", Heartbeat, () => Task.CompletedTask, CancellationToken.None);

        var a3 = lanes.EnterAsync("a", Heartbeat, () => Task.CompletedTask, CancellationToken.None);
        using var b1 = await lanes.EnterAsync("b", Heartbeat, () => Task.CompletedTask, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        await Task.Delay(100);
        a3.IsCompleted.ShouldBeFalse();

        a2.Dispose();
        using var third = await a3.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task All_tenants_together_stay_under_the_overall_limit()
    {
        var lanes = new TenantLanes(perTenant: 2, overall: 2);
        var a = await lanes.EnterAsync("a", Heartbeat, () => Task.CompletedTask, CancellationToken.None);
        using var b = await lanes.EnterAsync("b", Heartbeat, () => Task.CompletedTask, CancellationToken.None);

        var c = lanes.EnterAsync("c", Heartbeat, () => Task.CompletedTask, CancellationToken.None);
        await Task.Delay(100);
        c.IsCompleted.ShouldBeFalse();

        a.Dispose();
        using var entered = await c.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_waiting_delivery_keeps_telling_it_is_alive()
    {
        var lanes = new TenantLanes(perTenant: 1, overall: 10);
        using var first = await lanes.EnterAsync("a", Heartbeat, () => Task.CompletedTask, CancellationToken.None);
        var beats = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Should.ThrowAsync<OperationCanceledException>(() => lanes.EnterAsync("a", Heartbeat, () => Task.FromResult(Interlocked.Increment(ref beats)), stop.Token));

        beats.ShouldBeGreaterThan(3);
    }

    [Fact]
    public async Task A_lane_is_forgotten_once_nobody_is_in_it_or_waiting()
    {
        var lanes = new TenantLanes(perTenant: 1, overall: 10);
        var turn = await lanes.EnterAsync("a", Heartbeat, () => Task.CompletedTask, CancellationToken.None);
        using (var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(50)))
        {
            await Should.ThrowAsync<OperationCanceledException>(() => lanes.EnterAsync("a", Heartbeat, () => Task.CompletedTask, stop.Token));
        }

        lanes.Tenants.ShouldBe(1);
        turn.Dispose();
        turn.Dispose();
        lanes.Tenants.ShouldBe(0);
        using var again = await lanes.EnterAsync("a", Heartbeat, () => Task.CompletedTask, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
    }
}
