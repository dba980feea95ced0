using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>
/// One meter factory for every application host in the test process, never disposed.
/// </summary>
/// <remarks>
/// Each host would otherwise create its own <c>Microsoft.AspNetCore.Hosting</c> (and routing,
/// rate-limiting, …) meters and dispose them when it stops; the OpenTelemetry SDK treats meters of
/// one name as one metric stream, so a host stopping in a test class that ends would end the
/// stream for every host still running: <c>http_server_request_duration_seconds</c> vanished from
/// the live hosts' <c>/metrics</c> (open-telemetry/opentelemetry-dotnet#6412). A deployment runs
/// one host per process and does not meet this.
/// </remarks>
internal static class SharedMeters
{
    private static readonly IMeterFactory Factory = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();

    public static IWebHostBuilder UseSharedMeters(this IWebHostBuilder builder) =>
        builder.ConfigureTestServices(services => services.AddSingleton(Factory));
}
