using CqrsInference.Commands.Messaging;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;

namespace CqrsInference.Processors.Worker;

/// <summary>
/// The processor role: loads and warms each model, then runs one <see cref="ModelWorker"/> per
/// model, each on its own durable consumer (per-model isolation and backpressure).
/// </summary>
public sealed partial class ProcessorService(
    ModelCatalog catalog,
    RunnerFactory runners,
    NatsTopology topology,
    INatsJSContext js,
    ClaimCheck claimCheck,
    ProcessorOptions options,
    TimeProvider clock,
    ILoggerFactory loggers) : BackgroundService
{
    private readonly ILogger _logger = loggers.CreateLogger<ProcessorService>();
    private readonly List<ModelWorker> _workers = [];

    public IReadOnlyList<ModelWorker> Workers => _workers;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var selected = catalog.All
            .Where(m => options.Models.Count == 0 ? runners.IsAvailable(m) : options.Models.Contains(m.Name))
            .ToList();
        var running = new List<Task>();
        var loaded = new List<IModelRunner>();
        try
        {
            foreach (var model in selected)
            {
                var runner = await Task.Run(() => runners.Create(model), stoppingToken);
                loaded.Add(runner);
                await Task.Run(runner.WarmUp, stoppingToken);
                var consumer = await topology.EnsureProcessorConsumerAsync(model.Name, stoppingToken);
                var worker = new ModelWorker(model, runner, consumer, js, claimCheck, options, topology.Options, clock, loggers.CreateLogger<ModelWorker>());
                _workers.Add(worker);
                LogServing(_logger, model.Name, runner.Device, worker.Capacity, options.ResolveWorkerId());
                running.Add(worker.RunAsync(stoppingToken));
            }

            await Task.WhenAll(running);
        }
        finally
        {
            foreach (var runner in loaded)
            {
                runner.Dispose();
            }
        }
    }

    [LoggerMessage(LogLevel.Information, "Serving {Model} on {Device} with capacity {Capacity} as {Worker}")]
    private static partial void LogServing(ILogger logger, string model, string device, int capacity, string worker);
}
