using System.Globalization;
using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Gating;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>
/// For tests of redelivery and heartbeats only (registered when <c>Processor:FaultInjection</c> is
/// on): honours the job metadata key <c>cqrsi-test-fault</c> — <c>transient</c> (every attempt
/// fails), <c>transient:&lt;n&gt;</c> (the first n attempts fail), <c>sleep:&lt;ms&gt;</c> (the run
/// takes that much longer).
/// </summary>
internal sealed class FaultInjectingRunner(IJobRunner inner) : IJobRunner
{
    public const string MetadataKey = "cqrsi-test-fault";

    public string Device => inner.Device;

    public IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs)
    {
        var outcomes = inner.Run(jobs).ToArray();
        for (var i = 0; i < jobs.Count; i++)
        {
            var fault = jobs[i].Job.Metadata?.GetValueOrDefault(MetadataKey);
            if (Fails(fault, jobs[i].Attempt))
            {
                outcomes[i] = new RunOutcome.Faulted(JobErrorCodes.InjectedFault, $"Injected transient fault ({MetadataKey}).");
            }
            else if (fault?.StartsWith("sleep:", StringComparison.Ordinal) == true)
            {
                Thread.Sleep(int.Parse(fault["sleep:".Length..], CultureInfo.InvariantCulture));
            }
        }

        return outcomes;
    }

    private static bool Fails(string? fault, int attempt) =>
        fault == "transient"
        || (fault?.StartsWith("transient:", StringComparison.Ordinal) == true
            && int.TryParse(fault["transient:".Length..], CultureInfo.InvariantCulture, out var failing) && attempt <= failing);
}
