using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Worker.Fetching;

namespace CqrsInference.Processors.Worker.Shadowing;

/// <summary>
/// The delivery a shadow run hands the runner: the job's own was settled when its ending was
/// published, so there is nothing left to acknowledge; every settlement does nothing.
/// </summary>
internal sealed class ShadowDelivery : IDeliveryAck
{
    private static readonly ShadowDelivery Instance = new();

    public static JobDelivery For(JobCommand job) => new(null, "", null, default, 0, 1, Instance) { Decoded = job };

    public Task AckAsync() => Task.CompletedTask;

    public Task RetryAsync(TimeSpan after) => Task.CompletedTask;

    public Task TerminateAsync() => Task.CompletedTask;

    public Task ProgressAsync(CancellationToken ct) => Task.CompletedTask;
}
