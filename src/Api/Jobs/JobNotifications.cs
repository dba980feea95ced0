using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Projections.JobStatus;
using NATS.Client.Core;

namespace CqrsInference.Api.Jobs;

/// <summary>
/// Follows a job's lifecycle as processors announce it on core NATS (<c>cqrsi.job.&lt;id&gt;</c>, sent
/// after each event is stored), so synchronous submits and SSE streams never poll PostgreSQL.
/// Subscribe before the job can move, then fold what arrives with the projection's own code.
/// </summary>
internal static partial class JobNotifications
{
    public const int MaxWaitSeconds = 60;

    public static ValueTask<INatsSub<byte[]>> SubscribeAsync(INatsConnection nats, Guid jobId, CancellationToken ct) =>
        nats.SubscribeCoreAsync<byte[]>(NatsTopology.JobNotifySubject(jobId), cancellationToken: ct);

    /// <summary>The lifecycle event a notification carries, or null if it is not one.</summary>
    public static object? Decode(NatsMsg<byte[]> msg) => EventWire.Decode(msg.Headers, msg.Data);

    /// <summary>Waits until the job is terminal or the time is up; returns the terminal status or null.</summary>
    public static async Task<JobStatus?> WaitForTerminalAsync(INatsSub<byte[]> subscription, JobStatus start, TimeSpan wait, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(wait);
        var status = start;
        try
        {
            await foreach (var msg in subscription.Msgs.ReadAllAsync(timeout.Token))
            {
                if (Decode(msg) is { } @event && JobStatusProjection.Evolve(status, @event) is { } next)
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

        return null;
    }

    /// <summary>Parses <c>wait</c>: <c>500ms</c>, <c>5s</c>, <c>1m</c> or plain seconds, at most a minute.</summary>
    public static bool TryParseWait(string value, out TimeSpan wait)
    {
        wait = TimeSpan.Zero;
        var match = WaitPattern().Match(value);
        if (!match.Success)
        {
            return false;
        }

        var amount = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        wait = match.Groups[2].Value switch
        {
            "ms" => TimeSpan.FromMilliseconds(amount),
            "m" => TimeSpan.FromMinutes(amount),
            _ => TimeSpan.FromSeconds(amount),
        };
        return wait <= TimeSpan.FromSeconds(MaxWaitSeconds);
    }

    [GeneratedRegex(@"^([0-9]{1,6}(?:\.[0-9]{1,3})?)(ms|s|m)?$", RegexOptions.CultureInvariant)]
    private static partial Regex WaitPattern();
}
