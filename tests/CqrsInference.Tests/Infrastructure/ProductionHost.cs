using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>
/// The application as a deployment runs it: environment Production (appsettings.Production.json),
/// and only the settings a deployment must give (servers, schema, models): no operator key, and
/// nothing about anonymous callers or schema changes, unlike <see cref="PipelineHost"/>.
/// </summary>
public sealed class ProductionHost(string natsUrl, string schema, string roles) : WebApplicationFactory<Program>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Production");
        var settings = PipelineHost.Essentials(natsUrl, schema, roles);
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
    }
}
