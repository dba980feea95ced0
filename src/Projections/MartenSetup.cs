using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Projections.Analytics;
using CqrsInference.Projections.Audit;
using CqrsInference.Projections.JobStatus;
using CqrsInference.Projections.Recording;
using CqrsInference.Projections.Webhooks;
using JasperFx;
using JasperFx.Events.Projections;
using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Npgsql;
using CqrsInference.Projections.Recording.JobLog;

namespace CqrsInference.Projections;

public static class MartenSetup
{
    /// <summary>Registers the event store, its projections and the API's submission store.</summary>
    public static IServiceCollection AddEventStore(this IServiceCollection services, IConfiguration configuration, bool runDaemon = false)
    {
        // Every session of this process, pooled or a lock's own, asks the server to notice when the
        // process is gone, so that its locks end with it (DeadClientCheck), and waits for a connection
        // at most ConnectTimeout.Default unless the setting says otherwise.
        var connectionString = ConnectTimeout.AddTo(DeadClientCheck.AddTo(configuration.GetConnectionString("Postgres")
            ?? throw new InvalidOperationException("ConnectionStrings:Postgres is not set (see appsettings.json).")));
        var schema = configuration["Cqrsi:Schema"] ?? "cqrsi";

        // One pool for everything this process does with PostgreSQL (Marten, the recorders' set-based
        // writes, the sealer, the audit feed, verify and replay). A returned connection is not reset (no DISCARD ALL per
        // checkout): nothing here leaves session state behind; the leadership locks use a connection
        // of their own, never returned to this pool.
        var dataSource = new NpgsqlDataSourceBuilder(connectionString) { ConnectionStringBuilder = { NoResetOnClose = true } }.Build();
        // Registered by factory and resolved at start (PoolOwnership), so that the container owns it and
        // closes its connections when the host stops: an instance registration is never disposed.
        services.AddSingleton(_ => dataSource);
        services.AddHostedService<PoolOwnership>();
        services.AddSingleton(new EventStoreFacts(dataSource, schema));
        services.AddMartenStore(dataSource, schema, configuration.GetValue(DatabaseSchema.ApplyChangesSetting, defaultValue: true), runDaemon);
        services.AddSingleton<IIdempotencyRecords, JobStatusIdempotency>();

        // The host binds and checks the settings (Analytics, Recorder, Audit, Webhooks, Retention);
        // Recorder:BatchSize, Audit:SealInterval, … may be tuned, where they record and seal is the host's.
        services.AddOptions<RecorderOptions>().PostConfigure<Messaging.TopologyOptions>((recorder, topology) =>
            (recorder.ConnectionString, recorder.Schema, recorder.DuplicateWindow) = (connectionString, schema, topology.DuplicateWindow));
        services.PostConfigure<AuditOptions>(audit => (audit.ConnectionString, audit.Schema) = (connectionString, schema));
        services.AddSingleton<AuditVerifier>();
        services.AddSingleton<AuditFeed>();
        services.AddSingleton<ProjectionReplay>();
        services.AddSingleton<Pricing.PriceHistory>();
        services.AddSingleton<Pricing.InvoiceReader>();
        services.AddSingleton<Pricing.ReconciliationReader>();
        return services;
    }

    /// <summary>
    /// Marten on the process's pool. With <paramref name="applyChanges"/> it creates or updates the
    /// schema at start; without (production), it changes nothing and the start fails unless
    /// <c>migrate</c> has prepared the schema (<see cref="DatabaseSchema"/>).
    /// </summary>
    private static void AddMartenStore(this IServiceCollection services, NpgsqlDataSource dataSource, string schema, bool applyChanges, bool runDaemon)
    {
        var marten = services.AddMarten(options =>
            {
                options.Configure(dataSource, schema);
                if (!applyChanges)
                {
                    options.AutoCreateSchemaObjects = AutoCreate.None;
                }
            })
            .UseLightweightSessions();
        if (applyChanges)
        {
            marten.ApplyAllDatabaseChangesOnStartup();
        }
        else
        {
            // Before every other hosted service: nothing starts on a schema that `migrate` has not prepared.
            services.Insert(0, ServiceDescriptor.Singleton<IHostedService>(sp => new SchemaCheck(sp.GetRequiredService<IDocumentStore>(), schema)));
        }

        if (runDaemon)
        {
            // Async roll-ups (usage, utilization): one daemon leader at a time across processes.
            marten.AddAsyncDaemon(JasperFx.Events.Daemon.DaemonMode.HotCold);
        }
    }

    /// <summary>The projections role: a recorder per partition of the event log, the edge recorder, webhooks, the sealer.</summary>
    public static IServiceCollection AddRecorder(this IServiceCollection services, int partitions)
    {
        services.AddSingleton(sp => new Recorders(Enumerable.Range(0, partitions)
            .Select(p => ActivatorUtilities.CreateInstance<JobLogRecorder>(sp, p))
            .ToList()));
        for (var p = 0; p < partitions; p++)
        {
            var partition = p;
            services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<Recorders>().Partitions[partition]);
        }

        services.AddSingleton<EdgeRecorder>();
        services.AddHostedService(sp => sp.GetRequiredService<EdgeRecorder>());
        services.AddHttpClient(WebhookDispatcher.Consumer)
            .ConfigurePrimaryHttpMessageHandler(sp => WebhookConnections.CreateHandler(sp.GetRequiredService<WebhookOptions>().AddressRules()));
        services.TryAddSingleton<Batches.BatchReader>();
        services.AddHostedService<WebhookDispatcher>();
        services.AddHostedService<ProcessorReaper>();
        services.AddHostedService<Pricing.PriceListRecording>();
        services.AddSingleton<AuditSealer>();
        services.AddHostedService(sp => sp.GetRequiredService<AuditSealer>());
        services.AddSingleton<Retention.JobRetention>();
        services.AddHostedService(sp => sp.GetRequiredService<Retention.JobRetention>());
        return services;
    }

    public static StoreOptions Configure(this StoreOptions options, string connectionString, string schema)
    {
        options.Connection(connectionString);
        return options.ConfigureSchema(schema);
    }

    public static StoreOptions Configure(this StoreOptions options, NpgsqlDataSource dataSource, string schema)
    {
        options.Connection(dataSource);
        return options.ConfigureSchema(schema);
    }

    private static StoreOptions ConfigureSchema(this StoreOptions options, string schema)
    {
        options.DatabaseSchemaName = schema;
        options.AutoCreateSchemaObjects = AutoCreate.CreateOrUpdate;
        options.UseSystemTextJsonForSerialization();
        options.Events.UseAdvisoryLockTransaction = true;

        // Deterministic event ids plus this index make recording idempotent in the database itself.
        options.Events.EnableUniqueIndexOnEventId = true;
        foreach (var (name, type) in EventNames.Types.Concat(EdgeEventNames.Types).Concat(Commands.Batches.BatchJobs.Types).Concat(Commands.Pricing.PriceLists.Types).Concat(Commands.Backtests.BacktestRules.Types))
        {
            options.Events.MapEventType(type, name);
        }

        options.Schema.For<RecorderCheckpoint>().Identity(c => c.Id);

        // Tenant filters (quota, audit feed) and time ranges read these.
        options.Schema.For<JobStatus.JobStatus>().Index(j => j.Tenant).Index(j => j.SubmittedAt);

        // Retention finds the finished jobs it archives by this index, from where it stopped last.
        options.Schema.For<JobStatus.JobStatus>().Index(j => j.CompletedAt);

        // A batch's jobs are read by their batch, in line order (GET /v1/batches/{id}, its results and errors).
        options.Schema.For<JobStatus.JobStatus>().Index(j => j.Batch!.BatchId);
        options.Schema.For<Batches.BatchStatus>().Index(b => b.Tenant).Index(b => b.Status);
        options.Schema.For<Retention.RetentionMark>().Identity(m => m.Id);

        // The backtest runner finds the oldest backtest not ended by these.
        options.Schema.For<Backtests.BacktestReport>().Index(b => b.Status).Index(b => b.RequestedAt);
        options.ConfigureProjections();
        return options;
    }

    /// <summary>
    /// Every projection with its lifecycle. The job status is written by the job log's recorders, in
    /// the transaction of its events, with the projection's own fold (JobLog/RecordingPlan); Marten
    /// runs it live, for time travel. Processor status inline; the roll-ups async.
    /// </summary>
    public static void ConfigureProjections(this StoreOptions options)
    {
        options.Projections.Add<JobStatusProjection>(ProjectionLifecycle.Live);
        options.Projections.Add<ProcessorStatusProjection>(ProjectionLifecycle.Inline);
        options.Projections.Add<UsageProjection>(ProjectionLifecycle.Async);
        options.Projections.Add<ProcessorUsageProjection>(ProjectionLifecycle.Async);
        options.Projections.Add<ShadowComparisonProjection>(ProjectionLifecycle.Async);
        options.Projections.Add<EdgeSiteStatusProjection>(ProjectionLifecycle.Inline);
        options.Projections.Add<EdgeSiteActivityProjection>(ProjectionLifecycle.Async);
        options.Projections.Add<Batches.BatchStatusProjection>(ProjectionLifecycle.Inline);
        options.Projections.Add<Backtests.BacktestReportProjection>(ProjectionLifecycle.Inline);
    }
}

/// <summary>
/// Resolves the process's <see cref="NpgsqlDataSource"/> when the host starts, so that the
/// container, which disposes what it created, closes the pool's connections when the host ends.
/// </summary>
internal sealed class PoolOwnership(NpgsqlDataSource pool) : IHostedService
{
    /// <summary>The pool this host owns.</summary>
    public NpgsqlDataSource Pool => pool;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
