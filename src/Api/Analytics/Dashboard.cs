using Microsoft.Extensions.FileProviders;

namespace CqrsInference.Api.Analytics;

internal static class Dashboard
{
    /// <summary>
    /// Serves <c>/dashboard</c> and the chart library from the wwwroot beside the program, so it works
    /// whatever the working directory. Its data comes from the analytics API with the caller's key.
    /// </summary>
    public static WebApplication MapDashboard(this WebApplication app)
    {
        var root = Path.Combine(AppContext.BaseDirectory, "wwwroot");
        if (!Directory.Exists(root))
        {
            return app;
        }

        var files = new PhysicalFileProvider(root);
        app.UseStaticFiles(new StaticFileOptions { FileProvider = files });
        app.MapGet("/dashboard", () => Results.File(Path.Combine(root, "dashboard", "index.html"), "text/html"))
            .WithTags("Analytics").WithName("Dashboard").WithSummary("Live charts: queue depth, throughput, cost, utilization")
            .ExcludeFromDescription();
        return app;
    }
}
