using System.Globalization;
using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Gating;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>
/// For tests of redelivery, heartbeats and timeouts only (registered when
/// <c>Processor:FaultInjection</c> is on): honours the job metadata key <c>cqrsi-test-fault</c> —
/// <c>transient</c> (every attempt fails), <c>transient:&lt;n&gt;</c> (the first n attempts fail),
/// <c>first-series</c> (every attempt of the job's first attempt series fails, so it is dead-lettered,
/// and a retry of it runs clean: a fault that passed),
/// <c>crash</c> (the run throws an exception no outcome describes), <c>sleep:&lt;ms&gt;</c> (the run takes that much longer), <c>hang</c> (the run never ends by
/// itself). A sleep or a hang is part of the run: the run's abort (its execution timeout) ends it
/// as ONNX Runtime's <c>Terminate</c> ends a real run, with an <see cref="ExecutionTimeoutException"/>.
/// </summary>
internal sealed class FaultInjectingRunner(IJobRunner inner) : IJobRunner
{
    public const string MetadataKey = "cqrsi-test-fault";

    public string Device => inner.Device;

    public IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs, CancellationToken abort)
    {
        var outcomes = inner.Run(jobs, abort).ToArray();
        for (var i = 0; i < jobs.Count; i++)
        {
            var fault = jobs[i].Job.Metadata?.GetValueOrDefault(MetadataKey);
            if (Fails(fault, jobs[i].Attempt) || (fault == "first-series" && jobs[i].Job.SeriesNumber == 1))
            {
                outcomes[i] = new RunOutcome.Faulted(JobErrorCodes.InjectedFault, $"Injected transient fault ({MetadataKey}).");
            }
            else if (fault == "crash")
            {
                // Not an outcome: an exception of a type nothing around the model expects.
                throw new InvalidCastException($"Injected failure outside the model's outcomes ({MetadataKey}).");
            }
            else if (fault == "hang")
            {
                Wait(Timeout.InfiniteTimeSpan, abort);
            }
            else if (fault?.StartsWith("sleep:", StringComparison.Ordinal) == true)
            {
                Wait(TimeSpan.FromMilliseconds(int.Parse(fault["sleep:".Length..], CultureInfo.InvariantCulture)), abort);
            }
        }

        return outcomes;
    }

    private static bool Fails(string? fault, int attempt) =>
        fault == "transient"
        || (fault?.StartsWith("transient:", StringComparison.Ordinal) == true
            && int.TryParse(fault["transient:".Length..], CultureInfo.InvariantCulture, out var failing) && attempt <= failing);

    /// <summary>Waits as long as a slow model would, unless the run is aborted first.</summary>
    private static void Wait(TimeSpan time, CancellationToken abort)
    {
        if (abort.WaitHandle.WaitOne(time))
        {
            throw new ExecutionTimeoutException();
        }
    }
}
