using CqrsInference.Api.Analytics;
using CqrsInference.Api.Hosting;
using CqrsInference.Api.Jobs;
using CqrsInference.Api.Security;

if (AuditCommands.Handles(args))
{
    return await AuditCommands.RunAsync(args);
}

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddCqrsInferenceRoles();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapMetrics();
if (app.Services.GetRequiredService<Roles>().Api)
{
    app.MapApiDocumentation();
    app.UseApiAuthentication();
    app.UseRateLimiter();
    app.MapJobsApi();
    app.MapModelsApi();
    app.MapAdminApi();
    app.MapAuditApi();
    app.MapAnalyticsApi();
    app.MapDashboard();
}

await app.RunAsync();
return 0;

/// <summary>
/// Declared so that tests can host the application with WebApplicationFactory&lt;Program&gt;: top-level
/// statements otherwise compile to an internal class.
/// </summary>
public partial class Program;
