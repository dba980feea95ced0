using System.Threading.Channels;
using CqrsInference.Commands.Jobs;
using Marten;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Projections.JobStatus;

/// <summary>
/// The job-status read model's side of a submit (the command's <see cref="ISubmissionStore"/> port):
/// idempotency look-ups, and a provisional status for each accepted job so that it reads as queued
/// at once. The read model owns its table: the submission event itself is recorded only by the
/// recorder (the single writer of events), from the event log, and its projection then replaces the
/// provisional document with the same content. Concurrent submits share one transaction (group
/// commit); a document that already exists (the recorder was faster) is left alone by the insert
/// itself, never overwritten with an older state.
/// </summary>
internal sealed partial class JobStatusSubmissions : ISubmissionStore, IAsyncDisposable
{
    private const int MaxBatch = 256;
    private static readonly TimeSpan RecordTimeout = TimeSpan.FromSeconds(2);
    private readonly IDocumentStore _store;
    private readonly ILogger<JobStatusSubmissions> _logger;
    private readonly Channel<(V1.JobSubmitted Submitted, TaskCompletionSource Done)> _pending =
        Channel.CreateUnbounded<(V1.JobSubmitted, TaskCompletionSource)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;

    public JobStatusSubmissions(IDocumentStore store, ILogger<JobStatusSubmissions> logger)
    {
        (_store, _logger) = (store, logger);
        _writer = Task.Run(WriteLoopAsync);
    }

    public async Task<string?> FindDigestAsync(Guid jobId, string tenant, CancellationToken ct)
    {
        await using var session = _store.QuerySession();
        var status = await session.LoadAsync<JobStatus>(jobId, ct);
        return status is not null && status.Tenant == tenant ? status.RequestDigest : null;
    }

    public async Task TryRecordAsync(V1.JobSubmitted submitted, CancellationToken ct)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_pending.Writer.TryWrite((submitted, done)))
        {
            return;
        }

        // Best effort within the budget: the job is durable already, and the recorder records the
        // submission from the event log if this write is late or fails.
        await done.Task.WaitAsync(RecordTimeout, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();

        // The writer loop was started by this object; there is no JoinableTaskFactory context here.
#pragma warning disable VSTHRD003
        await _writer.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
#pragma warning restore VSTHRD003
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<(V1.JobSubmitted Submitted, TaskCompletionSource Done)>(MaxBatch);
        while (await _pending.Reader.WaitToReadAsync())
        {
            batch.Clear();
            while (batch.Count < MaxBatch && _pending.Reader.TryRead(out var item))
            {
                batch.Add(item);
            }

            try
            {
                await WriteAsync(batch.Select(b => b.Submitted).ToList());
            }
            catch (Exception e)
            {
                LogDeferred(_logger, batch.Count, e.Message);
            }

            foreach (var (_, done) in batch)
            {
                done.TrySetResult();
            }
        }
    }

    private async Task WriteAsync(IReadOnlyList<V1.JobSubmitted> submissions)
    {
        using var timeout = new CancellationTokenSource(RecordTimeout * 5);
        await using var session = _store.LightweightSession();
        // "Insert unless it exists", in one statement per job and one transaction for all: a
        // status the recorder wrote already (as new or newer) is left alone, with no exception
        // and no retry.
        var serializer = _store.Options.Serializer();
        var sql = $"insert into {_store.Options.DatabaseSchemaName}.mt_doc_jobstatus (id, data, mt_version, mt_dotnet_type, mt_last_modified) "
            + "values (?, ?::jsonb, 0, ?, transaction_timestamp()) on conflict (id) do nothing";
        foreach (var status in submissions.Select(JobStatusProjection.Create))
        {
            session.QueueSqlCommand(sql, status.Id, serializer.ToJson(status), typeof(JobStatus).FullName!);
        }

        await session.SaveChangesAsync(timeout.Token);
    }

    [LoggerMessage(LogLevel.Warning, "{Count} accepted jobs are durable in JetStream but not yet visible ({Reason}); the recorder will record them from the event log")]
    private static partial void LogDeferred(ILogger logger, int count, string reason);
}
