using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Webhooks;
using CqrsInference.Messaging;
using NATS.Client.JetStream;

namespace CqrsInference.Projections.Webhooks;

/// <summary>The dispatcher's handling of a delivery apart from its call: reading it, and putting it back for later.</summary>
internal static class WebhookRedelivery
{
    /// <summary>
    /// A delivery interrupted before its call (PostgreSQL away, say): back within
    /// <see cref="Retries.OutageMax"/>, jittered, so that it resumes soon after the server returns; if
    /// even the Nak fails (NATS away), the server delivers it again after AckWait.
    /// </summary>
    public static async Task AgainLaterAsync(INatsJSMsg<byte[]> msg, CancellationToken ct)
    {
        try
        {
            await msg.NakAsync(delay: Retries.OutageMax * (0.5 + (Random.Shared.NextDouble() / 2)), cancellationToken: ct);
        }
        catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException or OperationCanceledException)
        {
        }
    }

    /// <summary>The address refusal behind a failed call, if that is what it was.</summary>
    public static WebhookRefusedException? Refused(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is WebhookRefusedException refused)
            {
                return refused;
            }
        }

        return null;
    }

    /// <summary>The delivery owed, or null when the message cannot be read.</summary>
    public static WebhookOwed? Decode(byte[]? data)
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
}
