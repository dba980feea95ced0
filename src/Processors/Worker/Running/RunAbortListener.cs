using CqrsInference.Messaging;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>
/// Hears the API's aborts of cancelled running jobs (core NATS, <see cref="NatsRunCancels.AllSubjects"/>:
/// every processor hears every abort, since a job may run outside its region) and hands each to
/// <see cref="RunCancels"/>, which aborts the run if it is here. Losing one costs only the run's time:
/// the job's ending is the cancel already, and the run's own ending is dropped as a duplicate.
/// </summary>
internal sealed partial class RunAbortListener(INatsConnection nats, RunCancels cancels, ILogger<RunAbortListener> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await foreach (var msg in nats.SubscribeAsync<byte[]>(NatsRunCancels.AllSubjects, cancellationToken: stoppingToken))
                {
                    if (NatsRunCancels.TryParse(msg.Subject, out var jobId))
                    {
                        if (NatsRunCancels.SeriesOf(msg.Headers) is { } series)
                        {
                            LogAbort(logger, jobId, series);
                            cancels.Cancel(jobId, series);
                        }
                        else
                        {
                            LogAbortOfAnySeries(logger, jobId);
                            cancels.CancelRunning(jobId);
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (NatsException e)
            {
                LogSubscriptionFailed(logger, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    [LoggerMessage(LogLevel.Information, "Job {JobId} was cancelled in attempt series {Series}: its run here, if any, is aborted")]
    private static partial void LogAbort(ILogger logger, Guid jobId, int series);

    [LoggerMessage(LogLevel.Information, "Job {JobId} was cancelled by an API that names no attempt series: its run here, if one is running, is aborted")]
    private static partial void LogAbortOfAnySeries(ILogger logger, Guid jobId);

    [LoggerMessage(LogLevel.Warning, "Listening for aborts failed, trying again: {Reason}")]
    private static partial void LogSubscriptionFailed(ILogger logger, string reason);
}
