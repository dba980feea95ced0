using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Gating;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>Runs a batch of admitted jobs: one outcome per job, in order.</summary>
internal interface IJobRunner
{
    /// <summary>The device the model runs on (<c>cpu</c>, <c>cuda</c>).</summary>
    string Device { get; }

    IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs);
}

/// <summary>The model itself: the jobs' commands through its <see cref="IModelRunner"/>.</summary>
internal sealed class ModelJobRunner(IModelRunner model) : IJobRunner
{
    public string Device => model.Device;

    public IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs) => model.Run(jobs.Select(j => j.Job).ToList());
}

/// <summary>
/// Builds each worker's runner. With <c>Processor:FaultInjection</c> on (tests of redelivery and
/// heartbeats only), the model runner is wrapped in a <see cref="FaultInjectingRunner"/>.
/// </summary>
internal sealed class JobRunnerFactory(bool faultInjection)
{
    public IJobRunner Create(IModelRunner model) =>
        faultInjection ? new FaultInjectingRunner(new ModelJobRunner(model)) : new ModelJobRunner(model);
}
