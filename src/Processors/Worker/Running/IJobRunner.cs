using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Gating;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>Runs a batch of admitted jobs: one outcome per job, in order.</summary>
internal interface IJobRunner
{
    /// <summary>The device the model runs on (<c>cpu</c>, <c>cuda</c>).</summary>
    string Device { get; }

    /// <summary>
    /// Runs the batch; when <paramref name="abort"/> fires, the run is aborted and this throws
    /// <see cref="ExecutionTimeoutException"/>.
    /// </summary>
    IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs, CancellationToken abort);
}

/// <summary>The model itself: the jobs' commands through its <see cref="IModelRunner"/>.</summary>
internal sealed class ModelJobRunner(IModelRunner model) : IJobRunner
{
    public string Device => model.Device;

    public IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs, CancellationToken abort) =>
        model.Run(jobs.Select(j => j.Job).ToList(), abort);
}

/// <summary>
/// Builds each worker's runner: the model under the execution timeouts (<see cref="TimedRunner"/>).
/// With <c>Processor:FaultInjection</c> on (tests of redelivery, heartbeats and timeouts only), the
/// model runner is wrapped in a <see cref="FaultInjectingRunner"/> inside the timeouts.
/// </summary>
internal sealed class JobRunnerFactory(bool faultInjection, RunCancels cancels, TimeProvider clock, ILoggerFactory loggers)
{
    public IJobRunner Create(ModelDefinition definition, IModelRunner model)
    {
        IJobRunner inner = faultInjection ? new FaultInjectingRunner(new ModelJobRunner(model)) : new ModelJobRunner(model);
        return new TimedRunner(inner, definition, cancels, clock, loggers.CreateLogger<TimedRunner>());
    }
}
