using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker;
using CqrsInference.Processors.Worker.Fetching;
using CqrsInference.Processors.Worker.Running;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Processors;

public static class ProcessorSetup
{
    /// <summary>
    /// The processor role: runners for the manifest's models and the pulling workers. Its settings
    /// (<see cref="ProcessorOptions"/>, section <c>Processor</c>) are bound and checked by the host.
    /// </summary>
    public static IServiceCollection AddProcessors(this IServiceCollection services)
    {
        services.AddSingleton(sp => sp.GetRequiredService<ProcessorOptions>().Runtime);
        services.AddSingleton<SessionFactory>();
        services.AddSingleton<RunnerFactory>();
        services.AddSingleton<RunCancels>();
        services.AddHostedService<RunAbortListener>();
        services.AddSingleton(sp => new JobRunnerFactory(
            sp.GetRequiredService<ProcessorOptions>().FaultInjection, sp.GetRequiredService<RunCancels>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<IJobSource, NatsJobSource>();
        services.AddSingleton<WorkerFactory>();
        services.AddSingleton<InteractiveServer>();
        services.AddSingleton<ProcessorService>();
        services.AddHostedService(sp => sp.GetRequiredService<ProcessorService>());
        return services;
    }
}
