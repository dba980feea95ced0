using Microsoft.Extensions.Diagnostics.HealthChecks;
using NATS.Client.Core;

namespace CqrsInference.Api.Hosting;

internal sealed class NatsHealthCheck(INatsConnection nats) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var rtt = await ReadinessChecks.WithinAsync(ct => nats.PingAsync(ct).AsTask(), cancellationToken);
            return HealthCheckResult.Healthy($"NATS {nats.ServerInfo?.Version} answered in {rtt.TotalMilliseconds:F1} ms");
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy(ReadinessChecks.Said("NATS", e), e);
        }
    }
}

/// <summary>
/// What every readiness check shares: an answer within <see cref="AnswerWithin"/>, else unhealthy. A
/// server that hangs (stopped, or behind a network that drops packets) keeps its connections open
/// and answers nothing; without the bound a probe waited as long as the hang (190 s in a probe that
/// froze nats-server) and then said healthy.
/// </summary>
internal static class ReadinessChecks
{
    public static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(3);

    /// <summary>The check's answer, given up after <see cref="AnswerWithin"/> (its own call is cancelled too).</summary>
    public static async Task<T> WithinAsync<T>(Func<CancellationToken, Task<T>> check, CancellationToken ct)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(AnswerWithin);
        try
        {
            return await check(bounded.Token).WaitAsync(bounded.Token);
        }
        catch (OperationCanceledException) when (bounded.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new TimeoutException($"no answer within {AnswerWithin.TotalSeconds:0} s");
        }
    }

    /// <summary>The unhealthy result's description: the server and why.</summary>
    public static string Said(string server, Exception e) => e is TimeoutException timeout
        ? $"{server} does not answer: {timeout.Message}"
        : $"{server} does not answer";
}
