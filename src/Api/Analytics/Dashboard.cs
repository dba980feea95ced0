using Microsoft.Extensions.FileProviders;

namespace CqrsInference.Api.Analytics;

internal static class Dashboard
{
    /// <summary>
    /// Serves <c>/dashboard</c> and the chart library from the wwwroot beside the program, so it works
    /// whatever the working directory. Its data comes from the analytics API with the caller's key.
    /// </summary>
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "wwwroot");

    /// <summary>The page's scripts and styles, before authorization: they hold no data.</summary>
    public static WebApplication UseDashboardFiles(this WebApplication app)
    {
        if (Directory.Exists(Root))
        {
            app.UseStaticFiles(new StaticFileOptions { FileProvider = new PhysicalFileProvider(Root) });
        }

        return app;
    }

    public static WebApplication MapDashboard(this WebApplication app)
    {
        if (Directory.Exists(Root))
        {
            app.MapGet("/dashboard", () => Results.File(Path.Combine(Root, "dashboard", "index.html"), "text/html"))
                .WithTags("Analytics").WithName("Dashboard").WithSummary("Live charts: queue depth, throughput, cost, utilization")
                .ExcludeFromDescription()
                .AllowAnonymous();
        }

        return app;
    }
}
