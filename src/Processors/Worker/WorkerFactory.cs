using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Messaging;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Fetching;
using CqrsInference.Processors.Worker.Gating;
using CqrsInference.Processors.Worker.Publishing;
using CqrsInference.Processors.Worker.Running;
using CqrsInference.Processors.Worker.Shadowing;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Processors.Worker;

/// <summary>
/// Builds a model's worker from its stages, with the processor's and the model's settings. A worker
/// serves one or more versions of its model: slots and batch collection follow its primary version
/// (the model's default when served here, else the first served), each version runs under its own
/// runner, timeout and <c>maxBatch</c>. The model's shadow version, when loaded, gets a
/// <see cref="ShadowRunner"/> instead of an executor.
/// </summary>
internal sealed class WorkerFactory(
    ModelCatalog catalog,
    IJobSource source,
    IJobClaims claims,
    IClaimCheck claimCheck,
    IEventLog log,
    JobRunnerFactory runners,
    ProcessorOptions options,
    TopologyOptions topology,
    TimeProvider clock,
    ILoggerFactory loggers,
    OutageWatches? watches = null)
{
    /// <summary>A worker of one model's version (the model's only one, in most tests).</summary>
    public ModelWorker Create(ModelDefinition model, IModelRunner modelRunner) => Create([(model, modelRunner)]);

    /// <summary>A worker of the versions given, all of one model, each with its loaded runner.</summary>
    public ModelWorker Create(IReadOnlyList<(ModelDefinition Model, IModelRunner Runner)> loaded)
    {
        // The shadow version runs no job of its own: it has its runner, not an executor (ServedVersions).
        var shadow = loaded.FirstOrDefault(v => v.Model.State == ModelVersionStates.Shadow);
        var versions = loaded.Where(v => v.Model.State != ModelVersionStates.Shadow).ToList();
        var model = versions.FirstOrDefault(v => catalog.TryGet(v.Model.Name, out var d) && d.Version == v.Model.Version).Model ?? versions[0].Model;
        var slots = options.Slots ?? model.Slots;
        var logger = loggers.CreateLogger<ModelWorker>();
        var executors = versions.Select(v => new VersionExecutor(v.Model, MaxBatchOf(v.Model),
            new BatchExecutor(runners.Create(v.Model, v.Runner), model.Name, topology.JobAckWait / 3, clock, logger))).ToList();
        var maxBatch = MaxBatchOf(model);
        var device = executors[0].Executor.Device;
        var identity = new WorkerIdentity(options.ResolveWorkerId(), options.Region, device, options.DeviceClass ?? device);
        var capacity = new WorkerCapacity(slots * maxBatch, Math.Min(options.Scheduling.RemoteSlots, slots));
        var stages = new WorkerStages(
            new QueueFetcher(model.Name, source, capacity, options, clock, logger, (watches ?? OutageWatches.Detached()).For($"processor {model.Name}")),
            capacity,
            new JobGate(claims, claimCheck, identity, clock, logger),
            new VersionExecutors(executors, catalog, identity.Worker),
            new OutcomePublisher(log, claimCheck, new OutcomeDecision(identity, topology.MaxDeliver, options.RetryBaseDelay), model.Name, options.Region),
            shadow.Model is null ? null : new ShadowRunner(shadow.Model, runners.Create(shadow.Model, shadow.Runner),
                versions.ToDictionary(v => v.Model.Version, v => v.Model, StringComparer.Ordinal), log, identity, options.ShadowQueue, clock, logger,
                SpareCpu.OfHost(options.ShadowMinIdleCpu, clock)));
        return new ModelWorker(model, stages, new WorkerSettings(options.Region, slots, maxBatch, options.DrainTimeout, options.RetryBaseDelay, options.ReportRunningAfter), clock, logger);
    }

    /// <summary>A version's jobs per run: <c>Processor:MaxBatch</c> overrides a batching model's.</summary>
    private int MaxBatchOf(ModelDefinition model) => options.MaxBatch is { } max && model.Batching is not null ? Math.Max(1, max) : model.MaxBatch;
}
