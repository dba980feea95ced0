using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>
/// The application as a deployment runs it: environment Production (appsettings.Production.json),
/// and only the settings a deployment must give (servers, schema, models): no operator key, and
/// nothing about anonymous callers or schema changes, unlike <see cref="PipelineHost"/>.
/// </summary>
public sealed class ProductionHost(string natsUrl, string schema, string roles, IReadOnlyDictionary<string, string?>? settings = null) : WebApplicationFactory<Program>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Production");
        foreach (var (key, value) in PipelineHost.Essentials(natsUrl, schema, roles).Concat(settings ?? new Dictionary<string, string?>()))
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        builder.UseSharedMeters();
    }
}
