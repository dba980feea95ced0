using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>The real application in the test process, with the roles and servers a test chooses.</summary>
public sealed class PipelineHost(string natsUrl, string schema, string roles, IReadOnlyDictionary<string, string?>? settings = null)
    : WebApplicationFactory<Program>
{
    public string Schema => schema;

    /// <summary>What every test host needs: the servers, its schema, its roles and the models.</summary>
    public static Dictionary<string, string?> Essentials(string natsUrl, string schema, string roles) => new()
    {
        ["Nats:Url"] = natsUrl,
        ["ConnectionStrings:Postgres"] = TestEnvironment.Postgres,
        ["Cqrsi:Schema"] = schema,
        ["Cqrsi:Roles"] = roles,
        ["Models:Directory"] = TestEnvironment.ModelsDirectory,
        ["Models:Manifest"] = TestEnvironment.Manifest,
        ["Urls"] = "http://127.0.0.1:0",
    };

    public static IReadOnlyDictionary<string, string?> Settings(string natsUrl, string schema, string roles) => new Dictionary<string, string?>(Essentials(natsUrl, schema, roles))
    {
        ["Processor:PullExpires"] = "00:00:02",
        ["Processor:DrainTimeout"] = "00:00:05",

        // Jobs of a test's own region (no processor lives there) overflow to the shared processors soon.
        ["Processor:Scheduling:OverflowAfter"] = "00:00:00.500",
        // The platform operator's key, beside anonymous submit and read (fixtures may turn anonymous off).
        ["CQRSI_API_KEY"] = TestEnvironment.OperatorKey,
        ["Api:AllowAnonymous"] = "true",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Logging:LogLevel:CqrsInference"] = "Warning",
    };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in Settings(natsUrl, schema, roles))
        {
            builder.UseSetting(key, value);
        }

        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        builder.UseSharedMeters();
    }
}
