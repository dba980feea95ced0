using CqrsInference.Messaging;

namespace CqrsInference.Api.Hosting;

/// <summary>
/// Creates the core's <c>CQRSI_EDGE</c> stream, sourcing each site of <c>Edge:Sites</c> from its
/// JetStream domain, when this process creates streams (the API does). Runs after the
/// <see cref="TopologyInitializer"/>; a site that is not connected yet is simply sourced later.
/// </summary>
internal sealed partial class EdgeTopologyInitializer(EdgeTopology topology, ILogger<EdgeTopologyInitializer> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken) =>
        await Retries.Startup(e => e is not (OperationCanceledException or InvalidOperationException), f => LogRetry(logger, f.Attempt, f.Reason))
            .ExecuteAsync(
                async ct =>
                {
                    await topology.EnsureCoreAsync(ct);
                    if (topology.Options.Sites.Count > 0)
                    {
                        LogSourcing(logger, EdgeTopology.CoreStream, string.Join(", ", topology.Options.Sites.Select(s => s.Name)));
                    }
                },
                cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(LogLevel.Information, "{Stream} sources edge sites {Sites}")]
    private static partial void LogSourcing(ILogger logger, string stream, string sites);

    [LoggerMessage(LogLevel.Warning, "Creating the edge stream failed (attempt {Attempt}): {Reason}")]
    private static partial void LogRetry(ILogger logger, int attempt, string reason);
}

internal static class EdgeTopologySetup
{
    /// <summary>The core's list of edge sites and, where this process creates streams, the stream that sources them.</summary>
    public static IServiceCollection AddEdgeTopology(this IServiceCollection services, IConfiguration configuration, bool createsStreams)
    {
        services.AddSingleton<EdgeTopology>();
        if (createsStreams)
        {
            services.AddHostedService<EdgeTopologyInitializer>();
        }

        return services;
    }
}
