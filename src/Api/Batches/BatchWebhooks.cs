using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Projections.Batches;

namespace CqrsInference.Api.Batches;

/// <summary>
/// A batch with a <c>webhook</c> is called once when it ends (completed, cancelled or expired), by the
/// jobs' webhook dispatcher: its ending owes a delivery in the same webhook queue
/// (<see cref="WebhookQueue"/>), before the ending is committed, under the message id
/// <c>&lt;batch&gt;:webhook</c>, so that an ending appended again (a supervisor's round that failed to
/// commit, two cancels at once) owes it once. The dispatcher waits until the batch's recorded status
/// has ended, then sends its view (as <c>GET /v1/batches/{id}</c>), signed for its tenant.
/// </summary>
internal static class BatchWebhooks
{
    /// <summary>Owes the batch's call for its ending (<paramref name="eventType"/>: the ending's wire name); nothing when it has no webhook.</summary>
    public static Task OweAsync(WebhookQueue queue, BatchStatus batch, string eventType, CancellationToken ct) =>
        batch.Webhook is null ? Task.CompletedTask : queue.OweAsync([new WebhookOwed(batch.Id, eventType, batch.Tenant)], ct);
}
