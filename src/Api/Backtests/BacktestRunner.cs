using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using CqrsInference.Commands.Backtests;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Commands.Models;
using CqrsInference.Messaging;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker;
using CqrsInference.Projections.Backtests;
using Marten;
using Npgsql;

namespace CqrsInference.Api.Backtests;

public sealed class BacktestOptions
{
    /// <summary>How often an idle runner looks for a backtest to run, and how long it waits while the model's queues hold work.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Jobs compared between two progress events (and two looks at the model's queues).</summary>
    [Range(1, 1000)]
    public int ChunkSize { get; set; } = 25;
}

/// <summary>
/// Runs backtests (docs/ARCHITECTURE.md, "Decision: backtests"): in a process with the processor role
/// and the event store, one backtest at a time across the deployment (a PostgreSQL advisory lock on
/// a connection of its own), oldest first. It loads the candidate version with <see cref="RunnerFactory"/>
/// on one intra-op thread, beside the processor's own runners, and runs the window's recorded inputs
/// one job at a time, in chunks; before each chunk it waits while any queue of the model holds jobs
/// waiting, so primary work keeps the device. Each chunk is one <see cref="V1.BacktestProgressed"/>,
/// which says how far it got: a runner that dies resumes after the last one, recounting nothing.
/// </summary>
internal sealed partial class BacktestRunner(
    IDocumentStore store, NpgsqlDataSource db, BacktestHistory history, ModelCatalog catalog, JobQueues queues, ProcessorOptions processor,
    BacktestOptions options, TimeProvider clock, ILoggerFactory loggers, ILogger<BacktestRunner> logger) : BackgroundService
{
    private const string LockKey = "cqrsi-backtest-runner";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!await RunOneAsync(stoppingToken))
                {
                    await Task.Delay(options.PollInterval, clock, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or Marten.Exceptions.MartenException or NATS.Client.Core.NatsException or TimeoutException)
            {
                LogUnavailable(logger, e.Message);
                await Task.Delay(options.PollInterval, clock, stoppingToken);
            }
        }
    }

    /// <summary>Runs the oldest backtest not ended, holding the lock; false when there was none or another runner holds the lock.</summary>
    private async Task<bool> RunOneAsync(CancellationToken ct)
    {
        BacktestReport? next;
        await using (var session = store.QuerySession())
        {
            next = await session.Query<BacktestReport>()
                .Where(b => b.Status == BacktestStatuses.Queued || b.Status == BacktestStatuses.Running)
                .OrderBy(b => b.RequestedAt).FirstOrDefaultAsync(ct);
        }

        if (next is null)
        {
            return false;
        }

        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(db.ConnectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(ct);
        await using var take = new NpgsqlCommand("select pg_try_advisory_lock(hashtext($1), hashtext($2))", connection);
        take.Parameters.AddWithValue(LockKey);
        take.Parameters.AddWithValue(store.Options.DatabaseSchemaName);
        if (!(bool)(await take.ExecuteScalarAsync(ct))!)
        {
            return false;
        }

        // Read again under the lock: another runner may have finished it meanwhile.
        await using (var session = store.QuerySession())
        {
            next = await session.LoadAsync<BacktestReport>(next.Id, ct);
        }

        if (next is null || BacktestStatuses.IsEnded(next.Status))
        {
            return true;
        }

        await RunAsync(next, ct);
        return true;
    }

    private async Task RunAsync(BacktestReport report, CancellationToken ct)
    {
        if (!catalog.TryGet(report.Model, report.CandidateVersion, out var candidate))
        {
            await AppendAsync(report.Id, new V1.BacktestFailed(report.Id, clock.GetUtcNow(), $"Version '{report.CandidateVersion}' of '{report.Model}' is no longer in the manifest."), ct);
            return;
        }

        IModelRunner runner;
        try
        {
            runner = OneThreadRunners().Create(candidate, slots: 1);
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidOperationException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException or IOException)
        {
            await AppendAsync(report.Id, new V1.BacktestFailed(report.Id, clock.GetUtcNow(), $"The candidate could not be loaded: {e.Message}"), ct);
            return;
        }

        using (runner)
        {
            LogRunning(logger, report.Id, report.Model, report.CandidateVersion);
            await AppendAsync(report.Id, new V1.BacktestStarted(report.Id, clock.GetUtcNow(), processor.ResolveWorkerId(), runner.Device), ct);
            await RunChunksAsync(report, candidate, runner, ct);
        }
    }

    private async Task RunChunksAsync(BacktestReport report, ModelDefinition candidate, IModelRunner runner, CancellationToken ct)
    {
        while (true)
        {
            await WaitForSpareCapacityAsync(report.Model, ct);
            var cases = await history.NextAsync(report, options.ChunkSize, ct);
            if (cases.Count == 0)
            {
                await AppendAsync(report.Id, new V1.BacktestCompleted(report.Id, clock.GetUtcNow()), ct);
                LogCompleted(logger, report.Id, report.Compared, report.Different);
                return;
            }

            var progressed = await Task.Run(() => Compare(report.Id, cases, candidate, runner, ct), ct);
            report = await AppendAsync(report.Id, progressed, ct) ?? report;
        }
    }

    /// <summary>Runs each comparable case on the candidate, alone, and tallies the chunk.</summary>
    private V1.BacktestProgressed Compare(Guid id, IReadOnlyList<BacktestCase> cases, ModelDefinition candidate, IModelRunner runner, CancellationToken ct)
    {
        var skipped = new Dictionary<string, int>();
        var differences = new List<BacktestDifference>();
        var runs = new List<BacktestRun>();
        foreach (var c in cases)
        {
            var job = c.Job;
            var command = new JobCommand(job.Id, job.Tenant, candidate.Name, candidate.Version, job.Region, Priorities.Batch, job.SubmittedAt, job.RequestDigest, c.Inputs ?? [], null);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(candidate.TimeoutFor(null));
            var started = Stopwatch.GetTimestamp();
            var outcome = c.Skip is null ? RunOrFault(runner, command, timeout.Token) : null;
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (outcome is not RunOutcome.Succeeded succeeded)
            {
                var reason = c.Skip ?? BacktestSkips.CandidateFailed;
                skipped[reason] = skipped.GetValueOrDefault(reason) + 1;
                continue;
            }

            if (BacktestRules.Compare(job.Id, candidate, c.Outputs!, succeeded.Outputs) is { } difference)
            {
                differences.Add(difference);
            }

            var recordedMs = job.RunMs ?? 0;
            runs.Add(new BacktestRun(recordedMs, job.Device ?? "", recordedMs / Math.Max(1, job.BatchSize ?? 1) / 1000, ms, runner.Device));
        }

        var last = cases[^1].Job;
        return new V1.BacktestProgressed(id, clock.GetUtcNow(), new BacktestPosition(last.SubmittedAt, last.Id), runs.Count, runs.Count - differences.Count,
            differences.Count, skipped, differences, runs);
    }

    private static RunOutcome? RunOrFault(IModelRunner runner, JobCommand command, CancellationToken abort)
    {
        try
        {
            return runner.Run([command], abort)[0];
        }
        catch (ExecutionTimeoutException)
        {
            return null;
        }
    }

    /// <summary>Waits while any queue of the model holds jobs not yet delivered: they go first.</summary>
    private async Task WaitForSpareCapacityAsync(string model, CancellationToken ct)
    {
        while ((await queues.ListAsync(model, ct)).Any(q => q.Waiting > 0))
        {
            await Task.Delay(options.PollInterval, clock, ct);
        }
    }

    /// <summary>Appends to the backtest's stream; the report as it now stands.</summary>
    private async Task<BacktestReport?> AppendAsync(Guid id, object @event, CancellationToken ct)
    {
        await using var session = store.LightweightSession();
        session.Events.Append(id, @event);
        await session.SaveChangesAsync(ct);
        return await session.LoadAsync<BacktestReport>(id, ct);
    }

    /// <summary>A runner factory whose sessions use one intra-op thread: a backtest takes one core, not the processor's share.</summary>
    private RunnerFactory OneThreadRunners()
    {
        var runtime = processor.Runtime;
        var oneThread = new RuntimeOptions
        {
            ExecutionProvider = runtime.ExecutionProvider, CudaDeviceId = runtime.CudaDeviceId, IntraOpThreads = 1, InterOpThreads = 1, GraphOptimization = runtime.GraphOptimization,
        };
        return new RunnerFactory(catalog, new SessionFactory(oneThread, loggers.CreateLogger<SessionFactory>()));
    }

    [LoggerMessage(LogLevel.Information, "Backtest {BacktestId}: running {Model} version {Version} on the recorded inputs")]
    private static partial void LogRunning(ILogger logger, Guid backtestId, string model, string version);

    [LoggerMessage(LogLevel.Information, "Backtest {BacktestId} completed: {Compared} compared, {Different} different")]
    private static partial void LogCompleted(ILogger logger, Guid backtestId, int compared, int different);

    [LoggerMessage(LogLevel.Warning, "Backtests wait for their servers: {Reason}")]
    private static partial void LogUnavailable(ILogger logger, string reason);
}
