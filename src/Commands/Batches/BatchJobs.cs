using CqrsInference.Commands.Jobs;

namespace CqrsInference.Commands.Batches;

/// <summary>A line of a batch file that failed validation: its number (1-based), its customId, and every fault by field.</summary>
public sealed record RefusedLine(int Line, string? CustomId, IReadOnlyDictionary<string, string[]> Errors);

/// <summary>The statuses of a batch, and its rules that are not I/O.</summary>
public static class BatchStatuses
{
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Cancelled = "cancelled";
    public const string Expired = "expired";

    public static readonly IReadOnlyList<string> All = [Running, Completed, Cancelled, Expired];

    /// <summary>The error code of a line the batch's deadline (or its cancel) left unfinished.</summary>
    public const string BatchExpiredCode = "batch_expired";

    /// <summary>The error code of a line that failed validation and never became a job.</summary>
    public const string InvalidLineCode = "invalid_request";

    /// <summary>The error code of a queued line the batch's cancel cancelled.</summary>
    public const string CancelledCode = "cancelled";
}

/// <summary>The wire names of the batch events and the ids of a batch's jobs.</summary>
public static class BatchJobs
{
    public const string BatchSubmitted = "v1.batch_submitted";
    public const string BatchCancelled = "v1.batch_cancelled";
    public const string BatchExpired = "v1.batch_expired";
    public const string BatchCompleted = "v1.batch_completed";

    /// <summary>Every batch event type with its wire name (registered with Marten).</summary>
    public static readonly IReadOnlyDictionary<string, Type> Types = new Dictionary<string, Type>
    {
        [BatchSubmitted] = typeof(V1.BatchSubmitted),
        [BatchCancelled] = typeof(V1.BatchCancelled),
        [BatchExpired] = typeof(V1.BatchExpired),
        [BatchCompleted] = typeof(V1.BatchCompleted),
    };

    private static readonly Guid BatchNamespace = new("9b1f3c52-4e0a-4d8b-a6f2-2c7e5d9a1b30");

    /// <summary>The batch id: from the tenant's Idempotency-Key (a retried submit finds the same batch), else a new one.</summary>
    public static Guid BatchId(string tenant, string? idempotencyKey, DateTimeOffset now) => idempotencyKey is null
        ? Guid.CreateVersion7(now)
        : DeterministicGuid.Create(BatchNamespace, $"{tenant}\n{idempotencyKey}");

    /// <summary>The job id of a batch's line: derived, so a retried submit publishes the same jobs (the queue drops the copies).</summary>
    public static Guid JobId(Guid batchId, int line) => DeterministicGuid.Create(batchId, $"line\n{line}");
}
