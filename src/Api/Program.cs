using CqrsInference.Api.Analytics;
using CqrsInference.Api.Backtests;
using CqrsInference.Api.Batches;
using CqrsInference.Api.Failover;
using CqrsInference.Api.Hosting;
using CqrsInference.Api.Http;
using CqrsInference.Api.Inference;
using CqrsInference.Api.Jobs;
using CqrsInference.Api.Live;
using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;

if (AuditCommands.Handles(args))
{
    return await AuditCommands.RunAsync(args);
}

if (MigrateCommand.Handles(args))
{
    return await MigrateCommand.RunAsync(args);
}

try
{
    return await RunAsync(args);
}
catch (Exception e) when (HostExit.Ends(e))
{
    return HostExit.Refused(e);
}

static async Task<int> RunAsync(string[] args)
{
    var builder = AppBuilder.Create(args);
    builder.AddServiceDefaults();
    builder.AddCqrsInferenceRoles();

    var app = builder.Build();
    var api = app.Services.GetRequiredService<Roles>().Api;
    app.UseDefaultMiddleware();
    if (api)
    {
        // The dashboard's page and scripts are public; its data comes from the API with a key.
        app.UseDashboardFiles();
    }

    app.UseAuthentication();
    app.UseAuthorization();
    if (api)
    {
        app.UseKnownQueryParameters();

        // After routing (implicit) and authentication: the bound reads the endpoint's opt-out.
        app.UseRequestTimeouts();
    }

    app.UseBodyLimits();
    app.MapDefaultEndpoints();
    app.MapMetrics();
    if (api)
    {
        app.MapApiDocumentation();
        app.MapJobsApi();
        app.MapBatchesApi();
        app.MapModelsApi();
        app.MapInferenceApi();
        app.MapAdminApi();
        app.MapFailoverApi();
        app.MapBacktestsApi();
        app.MapAuditApi();
        app.MapAnalyticsApi();
        app.MapLiveApi();
        app.MapDashboard();
    }

    var watched = HostExit.Watch(app.Services);
    await app.RunAsync();
    return HostExit.After(watched);
}

/// <summary>
/// Declared so that tests can host the application with WebApplicationFactory&lt;Program&gt;: top-level
/// statements otherwise compile to an internal class.
/// </summary>
public partial class Program;
