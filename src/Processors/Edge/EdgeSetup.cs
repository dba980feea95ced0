using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CqrsInference.Processors.Edge;

public static class EdgeSetup
{
    /// <summary>The edge role: the site's processor, publishing to the site's own nats-server (<c>Nats:Url</c>).</summary>
    public static IServiceCollection AddEdgeSite(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection("EdgeSite").Get<EdgeSiteOptions>() ?? new EdgeSiteOptions();
        if (string.IsNullOrEmpty(options.StateDirectory))
        {
            options.StateDirectory = Path.Combine(".data", "edge", options.Name, "state");
        }

        if (string.IsNullOrEmpty(options.InputDirectory))
        {
            options.InputDirectory = Path.Combine(".data", "edge", options.Name, "input");
        }

        services.AddSingleton(options);
        services.AddHostedService<EdgeSiteService>();
        return services;
    }
}
