using Microsoft.Extensions.DependencyInjection;

namespace CqrsInference.Processors.Edge;

public static class EdgeSetup
{
    /// <summary>
    /// The edge role: the site's processor, publishing to the site's own nats-server (<c>Nats:Url</c>).
    /// Its settings (<see cref="EdgeSiteOptions"/>, section <c>EdgeSite</c>) are bound and checked by the host.
    /// </summary>
    public static IServiceCollection AddEdgeSite(this IServiceCollection services)
    {
        services.PostConfigure<EdgeSiteOptions>(options =>
        {
            if (string.IsNullOrEmpty(options.StateDirectory))
            {
                options.StateDirectory = Path.Combine(".data", "edge", options.Name, "state");
            }

            if (string.IsNullOrEmpty(options.InputDirectory))
            {
                options.InputDirectory = Path.Combine(".data", "edge", options.Name, "input");
            }
        });
        services.AddSingleton<EdgeLoopWatch>();
        services.AddHealthChecks().AddCheck<EdgeLoopHealthCheck>("edge-loop", tags: ["ready"]);
        services.AddHostedService<EdgeSiteService>();
        return services;
    }
}
