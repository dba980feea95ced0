using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Messaging;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Fetching;
using CqrsInference.Processors.Worker.Gating;
using CqrsInference.Processors.Worker.Publishing;
using CqrsInference.Processors.Worker.Running;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Processors.Worker;

/// <summary>Builds a model's worker from its stages, with the processor's and the model's settings.</summary>
internal sealed class WorkerFactory(
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
    public ModelWorker Create(ModelDefinition model, IModelRunner modelRunner)
    {
        var slots = options.Slots ?? model.Slots;
        var maxBatch = options.MaxBatch is { } max && model.Batching is not null ? Math.Max(1, max) : model.MaxBatch;
        var runner = runners.Create(model, modelRunner);
        var identity = new WorkerIdentity(options.ResolveWorkerId(), options.Region, runner.Device, options.DeviceClass ?? runner.Device);
        var capacity = new WorkerCapacity(slots * maxBatch, Math.Min(options.Scheduling.RemoteSlots, slots));
        var logger = loggers.CreateLogger<ModelWorker>();
        var stages = new WorkerStages(
            new QueueFetcher(model.Name, source, capacity, options, clock, logger, (watches ?? OutageWatches.Detached()).For($"processor {model.Name}")),
            capacity,
            new JobGate(claims, claimCheck, identity, clock, logger),
            new BatchExecutor(runner, model.Name, topology.JobAckWait / 3, clock, logger),
            new OutcomePublisher(log, claimCheck, new OutcomeDecision(identity, topology.MaxDeliver, options.RetryBaseDelay), model.Name, options.Region));
        return new ModelWorker(model, stages, new WorkerSettings(options.Region, slots, maxBatch, options.DrainTimeout, options.RetryBaseDelay, options.ReportRunningAfter), clock, logger);
    }
}
