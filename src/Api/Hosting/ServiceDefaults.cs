using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Commands.Jobs.Webhooks;
using CqrsInference.Messaging;
using CqrsInference.Commands.Models;
using CqrsInference.Processors;
using CqrsInference.Processors.Edge;
using CqrsInference.Projections;
using Marten;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Extensions.Microsoft.DependencyInjection;
using NATS.Net;

using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;

namespace CqrsInference.Api.Hosting;

internal static partial class ServiceDefaults
{
    /// <summary>What every role needs: NATS, the model catalog, problem details, health checks.</summary>
    public static WebApplicationBuilder AddServiceDefaults(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var services = builder.Services;
        // Under systemd (deploy/systemd): Type=notify readiness and journal-friendly console logs; elsewhere nothing.
        services.AddSystemd();
        // Read now, so that a TLS or credentials file that cannot be read stops the start with its setting's name.
        var connection = NatsConnectionSettings.Apply(NatsOpts.Default, configuration);
        services.AddNatsClient(nats => nats.ConfigureOptions(o => o.Configure<ILoggerFactory>((b, loggers) => b.Opts = b.Opts with
        {
            Url = connection.Url,
            Name = "cqrsinference",
            AuthOpts = connection.AuthOpts,
            TlsOpts = connection.TlsOpts,
            RequestTimeout = TimeSpan.FromSeconds(10),
            LoggerFactory = new NatsClientLogs(loggers, TimeProvider.System),
        })));
        services.AddSingleton<INatsJSContext>(sp => sp.GetRequiredService<INatsConnection>().CreateJetStreamContext());
        services.AddSingleton<NatsTopology>();
        services.AddSingleton<JobQueues>();
        services.AddSingleton<JobClaims>();
        services.AddSingleton<IJobClaims>(sp => sp.GetRequiredService<JobClaims>());
        services.AddSingleton<Commands.Jobs.Cancelling.IRunCancels, NatsRunCancels>();
        services.AddSingleton<ClaimCheck>();
        services.AddSingleton<IClaimCheck>(sp => sp.GetRequiredService<ClaimCheck>());
        services.AddSingleton<NatsEventLog>();
        services.AddSingleton<IEventLog>(sp => sp.GetRequiredService<NatsEventLog>());
        services.AddSingleton(TimeProvider.System);

        // Every background role's view of its servers: an outage logged once when it begins and once when it ends.
        services.AddSingleton<OutageWatches>();

        var manifest = Path.GetFullPath(configuration["Models:Manifest"] ?? "models/manifest.json");
        var directory = Path.GetFullPath(configuration["Models:Directory"] ?? ".models");
        services.AddSingleton(ModelCatalog.Load(manifest, directory));

        // First, so that it answers before the default writer: errors on /v2 in the protocol's shape.
        services.AddSingleton<Microsoft.AspNetCore.Http.IProblemDetailsWriter, Inference.V2ProblemDetailsWriter>();
        services.AddProblemDetails(o => o.CustomizeProblemDetails = Http.RoutingProblems.Describe);
        services.AddExceptionHandler<Http.ApiExceptionHandler>();

        // In every environment, not only Development (the framework's default): a body or parameter
        // the framework cannot bind is thrown to ApiExceptionHandler, which names the fault, instead
        // of a bare 400 with a title only.
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddApiAuthorization();
        services.AddHealthChecks()
            .AddCheck<NatsHealthCheck>("nats", tags: ["ready"]);
        return builder;
    }

    /// <summary>Registers the roles named by <c>Cqrsi:Roles</c>.</summary>
    public static WebApplicationBuilder AddCqrsInferenceRoles(this WebApplicationBuilder builder)
    {
        var roles = Roles.Parse(builder.Configuration["Cqrsi:Roles"]);
        var services = builder.Services;
        services.AddSingleton(roles);
        services.AddSettings(roles);
        if (roles.Edge)
        {
            // An edge site's processor: only its site's nats-server, none of the core's streams.
            services.AddObservability(builder.Configuration, roles);
            services.AddEdgeSite();
            return builder;
        }

        services.AddHostedService<TopologyInitializer>();
        services.AddObservability(builder.Configuration, roles);
        services.AddEdgeTopology(builder.Configuration, roles.Api);
        services.AddSingleton(new TopologyRole(roles.Api));
        if (roles.Api || roles.Projections)
        {
            services.AddEventStore(builder.Configuration, runDaemon: roles.Projections);
            services.AddHealthChecks().AddCheck<PostgresHealthCheck>("postgres", tags: ["ready"]);
        }

        if (roles.Api)
        {
            services.AddSubmitApi(builder.Configuration);
        }

        if (roles.Processor)
        {
            services.AddProcessors();
        }

        if (roles.Processor && (roles.Api || roles.Projections))
        {
            // Backtests read the history and run a candidate version: only where both are at hand.
            services.AddSetting<Backtests.BacktestOptions>("Backtests");
            services.AddSingleton<Backtests.BacktestHistory>();
            services.AddHostedService<Backtests.BacktestRunner>();
        }

        if (roles.Projections)
        {
            services.AddRecorder(Settings.Read<TopologyOptions>(builder.Configuration, "Topology").Partitions);
        }

        return builder;
    }

    /// <summary>The API role's services: submitting (admission, intake, idempotency claims), reading and housekeeping of the queues.</summary>
    private static void AddSubmitApi(this IServiceCollection services, IConfiguration configuration)
    {
        services.PostConfigure<SubmitOptions>(submit =>
        {
            submit.WebhooksEnabled = configuration["Webhooks:SigningKey"] is { Length: > 0 };
            submit.WebhookAddresses = new WebhookAddressRules(configuration.GetSection(WebhookAddressRules.AllowListSetting).Get<string[]>() ?? []);
        });
        services.AddSingleton<IJobQueue, NatsJobQueue>();
        services.AddSingleton<Commands.Jobs.Retrying.IQueuedJobs, NatsQueuedJobs>();
        services.AddSingleton<IInteractiveRuns, NatsInteractiveRuns>();
        services.AddSingleton<ISubmitAdmission, Jobs.Submitting.SubmitAdmission>();
        services.AddScoped<Jobs.Submitting.SubmitServices>();
        services.AddSingleton<Jobs.JobReader>();
        services.AddSingleton<Jobs.Waiting.QueueWaits>();
        services.AddSingleton<IAcceptedJobs>(sp => sp.GetRequiredService<Jobs.JobReader>());
        services.AddMediator(options => options.ServiceLifetime = ServiceLifetime.Singleton);
        services.AddApiDocumentation();
        Http.StoreDeadline.AddStoreDeadline(services);
        services.AddSingleton<TenantRateLimiter>();
        services.AddSingleton<TenantStreamLimiter>();
        services.AddSingleton<JobIntake>();
        services.AddSingleton<Jobs.Submitting.QueueDepthGuard>();
        services.AddSingleton<Jobs.Submitting.TenantQuota>();
        services.AddSingleton<QuotaCounters>();
        services.AddSingleton<IIdempotencyClaims, IdempotencyClaims>();
        services.AddSingleton<QueueHousekeeping>();
        services.AddSingleton<Jobs.JobEventFeed>();
        services.AddHostedService(sp => sp.GetRequiredService<Jobs.JobEventFeed>());
        services.AddSingleton<Live.LiveFeed>();
        services.AddHostedService(sp => sp.GetRequiredService<Live.LiveFeed>());
        services.AddHostedService<QueueHousekeepingService>();
        services.AddSingleton<Projections.Batches.BatchReader>();
        services.AddSingleton<WebhookQueue>();
        services.AddScoped<Batches.BatchServices>();
        services.AddHostedService<Batches.BatchSupervisor>();
        services.AddSingleton<IRecorderCheckpoints, Projections.Recording.RecorderCheckpointMove>();
        services.AddHostedService<Failover.StandbyMirrors>();
        services.AddSingleton<Failover.Takeover>();
        services.AddSingleton<Failover.JobHolding>();
        services.AddSingleton<IJobHolding>(sp => sp.GetRequiredService<Failover.JobHolding>());
        services.AddHostedService(sp => sp.GetRequiredService<Failover.JobHolding>());
        services.AddHostedService<Failover.HeldJobForwarder>();
        services.ConfigureMarten(options => options.Schema.For<Security.ApiKey>().Index(k => k.Tenant));
    }

    /// <summary>What is wrong with <c>Submit:Region</c> and <c>Submit:Regions</c>, if anything (checked at start).</summary>
    public static string? RegionProblem(SubmitOptions submit) =>
        submit.ServedRegions.Concat([submit.Region]).FirstOrDefault(r => !Commands.Models.Naming.IsToken(r)) is { } badRegion
            ? $"Submit:Region(s) '{badRegion}' is not a valid region: a region is {Commands.Models.Naming.TokenRule}."
            : !submit.ServedRegions.Contains(submit.Region)
                ? $"Submit:Region '{submit.Region}' must be one of Submit:Regions ({string.Join(", ", submit.ServedRegions)})."
                : null;

    /// <summary>Problem details for failures, then who the caller is and what it may do.</summary>
    public static WebApplication UseDefaultMiddleware(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }

    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        // GET (and HEAD) only: a probe that POSTs or TRACEs is told 405, not "Healthy".
        app.MapHealthChecks("/health", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready") }).AllowAnonymous()
            .WithMetadata(new HttpMethodMetadata([HttpMethods.Get, HttpMethods.Head]));
        app.MapHealthChecks("/alive", new HealthCheckOptions { Predicate = _ => false }).AllowAnonymous()
            .WithMetadata(new HttpMethodMetadata([HttpMethods.Get, HttpMethods.Head]));
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var roles = app.Services.GetRequiredService<Roles>();
            var urls = string.Join(", ", app.Urls);
            LogReady(app.Logger, roles.ToString(), urls);
        });
        return app;
    }

    [LoggerMessage(LogLevel.Information, "CqrsInference ready: roles {Roles}, listening on {Urls}")]
    private static partial void LogReady(ILogger logger, string roles, string urls);
}
