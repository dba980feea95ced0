using Microsoft.Extensions.DependencyInjection;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Tests.Infrastructure;

public static class JobMessages
{
    /// <summary>
    /// Messages of jobs and their lifecycle in a stream, leaving out the processors' capacity
    /// facts (<c>events.processors</c>), which arrive on their own schedule.
    /// </summary>
    public static async Task<long> CountAsync(INatsJSContext js, string stream)
    {
        var info = await js.GetStreamAsync(stream, new StreamInfoRequest { SubjectsFilter = ">" });
        return (info.Info.State.Subjects ?? new Dictionary<string, long>())
            .Where(s => !s.Key.Contains(".events.processors.", StringComparison.Ordinal))
            .Sum(s => s.Value);
    }

    /// <summary>Waits until the recorder of the partition that holds log sequence <paramref name="sequence"/> has recorded it.</summary>
    public static Task WaitUntilRecordedAsync(IServiceProvider services, ulong sequence) =>
        Retry.Until($"the recorders to pass sequence {sequence}",
            () => Task.FromResult(services.GetRequiredService<Projections.Recording.JobLog.Recorders>().Partitions.Max(r => r.Position)),
            p => p >= sequence);

    /// <summary>A model's jobs waiting and in flight, summed over its queues (regions, priorities, tenants).</summary>
    public static async Task<(long Waiting, long InFlight)> QueuedAsync(INatsJSContext js, string model)
    {
        var states = await new Messaging.JobQueues(js, new Messaging.TopologyOptions()).ListAsync(model, CancellationToken.None);
        return (states.Sum(q => q.Waiting), states.Sum(q => q.InFlight));
    }
}
