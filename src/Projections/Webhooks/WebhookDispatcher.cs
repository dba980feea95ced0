using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Batches;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Webhooks;
using CqrsInference.Messaging;
using CqrsInference.Projections.Batches;
using Marten;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Projections.Webhooks;

/// <summary>
/// Calls a job's webhook when it ends (and when it starts, for a job whose <c>webhookEvents</c> ask
/// for it: <see cref="WebhookEvents"/>): the recorder owes a delivery for each
/// (<see cref="WebhookQueue"/>), and this takes them from that durable work queue, calls the webhook
/// with the job's recorded state (<see cref="WebhookMessage"/>), and retries a failed call (an error, a timeout,
/// a status other than 2xx, a redirect, which is never followed) with exponential backoff, up to
/// <see cref="WebhookOptions.MaxAttempts"/> calls: only calls made count, never the server's
/// deliveries, so waiting for PostgreSQL or for the recording uses up no attempt
/// (<see cref="WebhookQueue.RetryLaterAsync"/> owes a failed call again with the count). Each call is signed for the job's tenant
/// (Standard Webhooks). A batch's webhook is called the same way when the batch ends: its ending owes
/// a delivery in the same queue, under the batch's id and the ending's name, and the call carries the
/// batch's view (<see cref="WebhookMessage.Of(BatchView, string)"/>).
/// Calls run concurrently, at most <see cref="WebhookOptions.MaxConcurrentPerTenant"/> per tenant
/// (<see cref="TenantLanes"/>), so one tenant's hanging endpoint does not hold up another's. A call
/// <see cref="WebhookAddressRules"/> refuses (checked again here, and at connect time on the
/// resolved addresses: <see cref="WebhookConnections"/>) is given up at once.
/// </summary>
internal sealed partial class WebhookDispatcher(
    INatsJSContext js,
    IDocumentStore store,
    IHttpClientFactory http,
    BatchReader batches,
    WebhookOptions options,
    TimeProvider clock,
    ILogger<WebhookDispatcher> logger,
    OutageWatches? watches = null) : BackgroundService
{
    public const string Consumer = "webhooks";

    private static readonly Counter<long> Deliveries = Telemetry.Meter.CreateCounter<long>(
        "cqrsi.webhooks.deliveries", "{call}", "Webhook calls by outcome: delivered, retried, given_up, refused");

    /// <summary>Every outcome <see cref="Deliveries"/> counts, each at 0 from the dispatcher's start (an alert on given_up reads 0, not "no data").</summary>
    private static readonly string[] Outcomes = ["delivered", "retried", "given_up", "refused"];

    private readonly WebhookAddressRules _addresses = options.AddressRules();
    private readonly TenantLanes _lanes = new(options.MaxConcurrentPerTenant, options.MaxConcurrent);
    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For("webhook dispatcher");
    private readonly WebhookQueue _queue = new(js);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Enabled)
        {
            LogDisabled(logger);
            return;
        }

        foreach (var outcome in Outcomes)
        {
            Deliveries.Add(0, new KeyValuePair<string, object?>("outcome", outcome));
        }

        // NATS unreachable or electing a stream leader: what was not acked is redelivered.
        var again = Retries.Restart(TimeSpan.FromSeconds(1), e => e is NATS.Client.Core.NatsException or TimeoutException, f => _watch.Failed(f.Exception));
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await again.ExecuteAsync(async ct => await DispatchAsync(ct), stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Takes every owed delivery as it comes; each waits for its tenant's turn on its own (the server bounds them: MaxAckPending).</summary>
    private async Task DispatchAsync(CancellationToken stoppingToken)
    {
        var consumer = await js.CreateOrUpdateConsumerAsync(
            WebhookQueue.Stream,
            new ConsumerConfig(WebhookQueue.Consumer)
            {
                AckPolicy = ConsumerConfigAckPolicy.Explicit,
                AckWait = options.Timeout * 3,
                MaxAckPending = options.MaxPending,
                Description = "Calls job webhooks when jobs end.",
            },
            stoppingToken);
        _watch.Worked();
        var running = new ConcurrentDictionary<Task, bool>();
        try
        {
            await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: stoppingToken))
            {
                var delivery = Task.Run(() => HandleAsync(msg, stoppingToken), stoppingToken);
                running[delivery] = true;
                _ = delivery.ContinueWith(t => running.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await Task.WhenAll(running.Keys).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task HandleAsync(INatsJSMsg<byte[]> msg, CancellationToken ct)
    {
        try
        {
            if (WebhookRedelivery.Decode(msg.Data) is not { } owed)
            {
                LogUndecodable(logger, msg.Subject);
                Deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "given_up"));
                await msg.AckTerminateAsync(cancellationToken: ct);
                return;
            }

            // Backing off after a failed call: back when it is due (a Nak costs no attempt).
            if (WebhookQueue.DueAt(msg) - clock.GetUtcNow() is { Ticks: > 0 } wait)
            {
                await msg.NakAsync(delay: wait, cancellationToken: ct);
                return;
            }

            using var turn = await _lanes.EnterAsync(owed.Tenant ?? "", options.Timeout, () => msg.AckProgressAsync(cancellationToken: ct).AsTask(), ct);
            await DeliverAsync(msg, owed, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            // PostgreSQL or NATS away mid-delivery: tried again (no call was made, so no attempt is
            // counted). An outage is logged once (the watch), anything else each time.
            if (!Projections.Outages.IsOutage(e))
            {
                LogInterrupted(logger, e.Message);
            }
            else
            {
                _watch.Failed(e);
            }

            await WebhookRedelivery.AgainLaterAsync(msg, ct);
        }
    }

    private async Task DeliverAsync(INatsJSMsg<byte[]> msg, WebhookOwed owed, CancellationToken ct)
    {
        if (await LoadAsync(owed, ct) is not { } subject)
        {
            // Owed just before the event was committed: wait for the recorded state, at most MaxWaitForRecording.
            await WaitForRecordingAsync(msg, owed.JobId, ct);
            return;
        }

        // Submitted under other rules (an older version, a host since taken off the allow-list): not called.
        var url = subject.Url ?? "";
        if (_addresses.Refusal(url) is { } refusal)
        {
            await RefuseAsync(msg, subject.Id, refusal, ct);
            return;
        }

        // Only calls made count, never the server's deliveries (waits for PostgreSQL or the recording).
        var attempt = WebhookQueue.CallsMade(msg) + 1;
        try
        {
            var failure = await PostAsync(subject, url, attempt, ct);
            if (failure is null)
            {
                Deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "delivered"));
                await msg.AckAsync(cancellationToken: ct);
                _watch.Worked();
                return;
            }

            await RetryOrGiveUpAsync(msg, owed, attempt, failure, ct);
        }
        catch (HttpRequestException e) when (WebhookRedelivery.Refused(e) is { } refused)
        {
            await RefuseAsync(msg, subject.Id, refused.Message, ct);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            var reason = e is OperationCanceledException ? $"no answer within {options.Timeout}" : e.Message;
            await RetryOrGiveUpAsync(msg, owed, attempt, reason, ct);
        }
    }

    /// <summary>Whether the recorded state shows what the call is about: the job's start, or its ending.</summary>
    private static bool Recorded(JobStatus.JobStatus status, WebhookOwed owed) =>
        JobLifecycle.IsTerminal(status.Status) || (WebhookEvents.KindOf(owed.EventType) == WebhookEvents.Started && status.StartedAt is not null);

    /// <summary>
    /// The call, once the recorded state shows what it is about (null until then): a job's start or
    /// ending, or the ending of a batch (owed under a batch event's name, <see cref="BatchJobs.Types"/>).
    /// </summary>
    private async Task<WebhookSubject?> LoadAsync(WebhookOwed owed, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        if (BatchJobs.Types.ContainsKey(owed.EventType))
        {
            var batch = await session.LoadAsync<BatchStatus>(owed.JobId, ct);
            return batch is null || batch.Status == BatchStatuses.Running
                ? null
                : WebhookMessage.Of(await batches.ViewAsync(batch, ct), batch.Tenant);
        }

        var status = await session.LoadAsync<JobStatus.JobStatus>(owed.JobId, ct);
        return status is null || !Recorded(status, owed) ? null : WebhookMessage.Of(status, owed.EventType);
    }

    private async Task WaitForRecordingAsync(INatsJSMsg<byte[]> msg, Guid jobId, CancellationToken ct)
    {
        if (msg.Metadata is { } meta && clock.GetUtcNow() - meta.Timestamp > options.MaxWaitForRecording)
        {
            LogGaveUp(logger, jobId, WebhookQueue.CallsMade(msg), $"its ending was not recorded within {options.MaxWaitForRecording}");
            Deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "given_up"));
            await msg.AckTerminateAsync(cancellationToken: ct);
            return;
        }

        await msg.NakAsync(delay: TimeSpan.FromSeconds(1), cancellationToken: ct);
    }

    /// <summary>POSTs the recorded state, signed for its tenant (<see cref="WebhookMessage"/>); null when the endpoint took it, else why not.</summary>
    private async Task<string?> PostAsync(WebhookSubject subject, string url, int attempt, CancellationToken ct)
    {
        using var request = WebhookMessage.Request(url, subject, attempt, clock.GetUtcNow(), options);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.Timeout);

        // Only the status matters: the response's body is never read.
        using var response = await http.CreateClient(Consumer).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        return (int)response.StatusCode switch
        {
            >= 200 and < 300 => null,
            >= 300 and < 400 => $"HTTP {(int)response.StatusCode} to {response.Headers.Location?.ToString() ?? "(no Location)"}; redirects are not followed",
            var code => $"HTTP {code}",
        };
    }

    /// <summary>After failed call number <paramref name="attempt"/>: owed again when its backoff is over (<see cref="WebhookQueue.RetryLaterAsync"/>), or given up.</summary>
    private async Task RetryOrGiveUpAsync(INatsJSMsg<byte[]> msg, WebhookOwed owed, int attempt, string reason, CancellationToken ct)
    {
        if (attempt >= options.MaxAttempts)
        {
            LogGaveUp(logger, owed.JobId, attempt, reason);
            Deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "given_up"));
            await msg.AckTerminateAsync(cancellationToken: ct);
            return;
        }

        var delay = TimeSpan.FromSeconds(Math.Min(60, Math.Pow(2, attempt - 1)));
        LogRetry(logger, owed.JobId, attempt, reason, delay.TotalSeconds);
        Deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "retried"));
        await _queue.RetryLaterAsync(msg, owed, attempt, clock.GetUtcNow() + delay, ct);
    }

    private async Task RefuseAsync(INatsJSMsg<byte[]> msg, Guid jobId, string reason, CancellationToken ct)
    {
        LogRefused(logger, jobId, reason);
        Deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "refused"));
        await msg.AckTerminateAsync(cancellationToken: ct);
    }

    [LoggerMessage(LogLevel.Information, "Webhooks are off: Webhooks:SigningKey is not set")]
    private static partial void LogDisabled(ILogger logger);

    [LoggerMessage(LogLevel.Warning, "Webhook of job {JobId} failed (attempt {Attempt}: {Reason}); retrying in {Seconds} s")]
    private static partial void LogRetry(ILogger logger, Guid jobId, int attempt, string reason, double seconds);

    [LoggerMessage(LogLevel.Warning, "Webhook delivery interrupted, it will be delivered again: {Reason}")]
    private static partial void LogInterrupted(ILogger logger, string reason);

    [LoggerMessage(LogLevel.Error, "Webhook of job {JobId} failed {Attempt} times ({Reason}); giving up")]
    private static partial void LogGaveUp(ILogger logger, Guid jobId, int attempt, string reason);

    [LoggerMessage(LogLevel.Error, "Webhook owed on {Subject} cannot be read; dropped")]
    private static partial void LogUndecodable(ILogger logger, string subject);

    [LoggerMessage(LogLevel.Error, "Webhook of job {JobId} refused, not called and not retried: {Reason}")]
    private static partial void LogRefused(ILogger logger, Guid jobId, string reason);
}
