using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using Marten;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Projections.Recording;

/// <summary>The API's view of the event store: idempotency look-ups and the immediate record of a submit.</summary>
public sealed partial class MartenSubmissionStore(IDocumentStore store, ILogger<MartenSubmissionStore> logger) : ISubmissionStore
{
    private static readonly TimeSpan RecordTimeout = TimeSpan.FromSeconds(2);

    public async Task<string?> FindDigestAsync(Guid jobId, string tenant, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        var status = await session.LoadAsync<JobStatus.JobStatus>(jobId, ct);
        return status is not null && status.Tenant == tenant ? status.RequestDigest : null;
    }

    public async Task TryRecordAsync(V1.JobSubmitted submitted, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(RecordTimeout);
        try
        {
            await using var session = store.LightweightSession();
            session.Events.StartStream<JobStatus.JobStatus>(submitted.JobId, EventRecorder.Wrap(session, submitted, 0));
            await session.SaveChangesAsync(timeout.Token);
        }
        catch (Exception e) when (e is Marten.Exceptions.ExistingStreamIdCollisionException or JasperFx.Events.EventStreamUnexpectedMaxEventIdException or JasperFx.ConcurrencyException)
        {
            // The recorder was first: the submission is recorded, which is all this wanted.
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            LogDeferred(logger, submitted.JobId, e.Message);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Job {JobId} is durable in JetStream but not yet recorded ({Reason}); the recorder will record it from the event log")]
    private static partial void LogDeferred(ILogger logger, Guid jobId, string reason);
}
