using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using Marten;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Projections.Webhooks;

public sealed class WebhookOptions
{
    /// <summary>Master key; each tenant signs with HMAC-SHA256(master, "tenant:" + tenant). Empty: webhooks are off.</summary>
    public string SigningKey { get; set; } = "";

    /// <summary>Delivery attempts per job before giving up.</summary>
    public int MaxAttempts { get; set; } = 8;

    /// <summary>How long a delivery waits for the job's ending to be recorded (PostgreSQL away, say) before it gives up.</summary>
    public TimeSpan MaxWaitForRecording { get; set; } = TimeSpan.FromHours(1);

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public bool Enabled => SigningKey.Length > 0;

    /// <summary>The key a tenant verifies its webhooks with (hex).</summary>
    public string TenantKey(string tenant) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(SigningKey), Encoding.UTF8.GetBytes("tenant:" + tenant)));

    /// <summary>The <c>Cqrsi-Signature</c> header: <c>t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256(tenant key, "t.body")&gt;</c>.</summary>
    public string Sign(string tenant, long unixSeconds, string body) =>
        $"t={unixSeconds},v1=" + Convert.ToHexStringLower(HMACSHA256.HashData(
            Encoding.UTF8.GetBytes(TenantKey(tenant)), Encoding.UTF8.GetBytes($"{unixSeconds.ToString(CultureInfo.InvariantCulture)}.{body}")));
}

/// <summary>
/// Calls a job's webhook when it ends: the recorder owes a delivery for each ended job with a
/// webhook (<see cref="WebhookQueue"/>), and this takes them from that durable work queue, calls
/// the webhook with the job's recorded final state, and retries a failed call with exponential
/// backoff (Nak with delay), up to <see cref="WebhookOptions.MaxAttempts"/>. Each call is signed
/// for the job's tenant.
/// </summary>
internal sealed partial class WebhookDispatcher(
    INatsJSContext js,
    IDocumentStore store,
    IHttpClientFactory http,
    WebhookOptions options,
    TimeProvider clock,
    ILogger<WebhookDispatcher> logger) : BackgroundService
{
    public const string Consumer = "webhooks";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Enabled)
        {
            LogDisabled(logger);
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await DispatchAsync(stoppingToken);
            }
            catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException && !stoppingToken.IsCancellationRequested)
            {
                // NATS unreachable or electing a stream leader: what was not acked is redelivered.
                LogRestarting(logger, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private async Task DispatchAsync(CancellationToken stoppingToken)
    {
        var consumer = await js.CreateOrUpdateConsumerAsync(
            WebhookQueue.Stream,
            new ConsumerConfig(WebhookQueue.Consumer)
            {
                AckPolicy = ConsumerConfigAckPolicy.Explicit,
                AckWait = options.Timeout * 3,
                MaxAckPending = 1000,
                Description = "Calls job webhooks when jobs end.",
            },
            stoppingToken);
        using var concurrency = new SemaphoreSlim(16);
        var running = new List<Task>();
        try
        {
            await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: stoppingToken))
            {
                await concurrency.WaitAsync(stoppingToken);
                running.RemoveAll(t => t.IsCompleted);
                running.Add(Task.Run(
                    async () =>
                    {
                        try
                        {
                            await DeliverAsync(msg, stoppingToken);
                        }
                        finally
                        {
                            concurrency.Release();
                        }
                    },
                    stoppingToken));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await Task.WhenAll(running).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task DeliverAsync(INatsJSMsg<byte[]> msg, CancellationToken ct)
    {
        if (Decode(msg.Data) is not { } owed)
        {
            await msg.AckTerminateAsync(cancellationToken: ct);
            return;
        }

        await using var session = store.QuerySession();
        var status = await session.LoadAsync<JobStatus.JobStatus>(owed.JobId, ct);
        if (status is null || !JobLifecycle.IsTerminal(status.Status))
        {
            // Owed just before the ending was committed: wait for the recorded state, at most MaxWaitForRecording.
            await WaitForRecordingAsync(msg, owed.JobId, ct);
            return;
        }

        var attempt = (int)(msg.Metadata?.NumDelivered ?? 1);
        try
        {
            var delivered = await PostAsync(status, owed.EventType, attempt, ct);
            if (delivered is null)
            {
                await msg.AckAsync(cancellationToken: ct);
                return;
            }

            await RetryOrGiveUpAsync(msg, status.Id, attempt, delivered, ct);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            await RetryOrGiveUpAsync(msg, status.Id, attempt, e.Message, ct);
        }
    }

    private static WebhookOwed? Decode(byte[]? data)
    {
        try
        {
            return data is null ? null : JsonSerializer.Deserialize(data, Commands.WireJson.Default.WebhookOwed);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private async Task WaitForRecordingAsync(INatsJSMsg<byte[]> msg, Guid jobId, CancellationToken ct)
    {
        if (msg.Metadata is { } meta && clock.GetUtcNow() - meta.Timestamp > options.MaxWaitForRecording)
        {
            LogGaveUp(logger, jobId, (int)meta.NumDelivered, $"its ending was not recorded within {options.MaxWaitForRecording}");
            await msg.AckTerminateAsync(cancellationToken: ct);
            return;
        }

        await msg.NakAsync(delay: TimeSpan.FromSeconds(1), cancellationToken: ct);
    }

    /// <summary>POSTs the job's final state, signed for its tenant; null when the endpoint took it, else why not.</summary>
    private async Task<string?> PostAsync(JobStatus.JobStatus final, string type, int attempt, CancellationToken ct)
    {
        var body = JsonSerializer.Serialize(
            new
            {
                id = final.Id,
                status = final.Status,
                model = final.Model,
                region = final.Region,
                completedAt = final.CompletedAt,
                attempts = final.Attempts,
                outputs = final.Outputs,
                outputsRef = final.OutputsRef,
                error = final.Error,
                @event = type,
            },
            JsonSerializerOptions.Web);
        using var request = new HttpRequestMessage(HttpMethod.Post, final.Webhook)
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("Cqrsi-Signature", options.Sign(final.Tenant, clock.GetUtcNow().ToUnixTimeSeconds(), body));
        request.Headers.Add("Cqrsi-Delivery", $"{final.Id}:{attempt}");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.Timeout);
        using var response = await http.CreateClient(Consumer).SendAsync(request, timeout.Token);
        return response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode}";
    }

    private async Task RetryOrGiveUpAsync(INatsJSMsg<byte[]> msg, Guid jobId, int attempt, string reason, CancellationToken ct)
    {
        if (attempt >= options.MaxAttempts)
        {
            LogGaveUp(logger, jobId, attempt, reason);
            await msg.AckTerminateAsync(cancellationToken: ct);
            return;
        }

        var delay = TimeSpan.FromSeconds(Math.Min(60, Math.Pow(2, attempt - 1)));
        LogRetry(logger, jobId, attempt, reason, delay.TotalSeconds);
        await msg.NakAsync(delay: delay, cancellationToken: ct);
    }

    [LoggerMessage(LogLevel.Information, "Webhooks are off: Webhooks:SigningKey is not set")]
    private static partial void LogDisabled(ILogger logger);

    [LoggerMessage(LogLevel.Warning, "Webhook of job {JobId} failed (attempt {Attempt}: {Reason}); retrying in {Seconds} s")]
    private static partial void LogRetry(ILogger logger, Guid jobId, int attempt, string reason, double seconds);

    [LoggerMessage(LogLevel.Warning, "Webhook delivery paused, starting again: {Reason}")]
    private static partial void LogRestarting(ILogger logger, string reason);

    [LoggerMessage(LogLevel.Error, "Webhook of job {JobId} failed {Attempt} times ({Reason}); giving up")]
    private static partial void LogGaveUp(ILogger logger, Guid jobId, int attempt, string reason);
}
