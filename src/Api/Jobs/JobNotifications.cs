using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Projections.JobStatus;
using NATS.Client.Core;

namespace CqrsInference.Api.Jobs;

/// <summary>
/// Follows a job's lifecycle as the event log stores it (<see cref="JobEventFeed"/>), so synchronous
/// submits and SSE streams never poll PostgreSQL. Follow before the job can move, then fold what
/// arrives with the projection's own code.
/// </summary>
internal static class JobNotifications
{
    public const int MaxWaitSeconds = 60;

    /// <summary>Waits until the job is terminal or the time is up; returns the terminal status or null.</summary>
    public static async Task<JobStatus?> WaitForTerminalAsync(JobEventFeed.Follow follow, JobStatus start, TimeSpan wait, CancellationToken ct) =>
        await FollowAsync(follow, start, wait, ct) is { } latest && JobLifecycle.IsTerminal(latest.Status) ? latest : null;

    /// <summary>The job as it stands when it ended or the time was up, folded from <paramref name="start"/> with what arrived.</summary>
    public static async Task<JobStatus> FollowAsync(JobEventFeed.Follow follow, JobStatus start, TimeSpan wait, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(wait);
        var status = start;
        try
        {
            await foreach (var @event in follow.Events.ReadAllAsync(timeout.Token))
            {
                if (JobStatusProjection.Evolve(status, @event) is { } next)
                {
                    status = next;
                    if (JobLifecycle.IsTerminal(status.Status))
                    {
                        return status;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
        }

        return status;
    }

    /// <summary>Parses <c>wait</c>: a <see cref="Durations"/> of at most a minute.</summary>
    public static bool TryParseWait(string value, out TimeSpan wait) =>
        Durations.TryParse(value, out wait) && wait <= TimeSpan.FromSeconds(MaxWaitSeconds);
}
