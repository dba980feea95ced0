namespace CqrsInference.Projections.Recording;

/// <summary>How far a recorder has recorded its log (the JetStream stream sequence), stored with every batch.</summary>
public sealed record RecorderCheckpoint(string Id, ulong Sequence);

public sealed class RecorderOptions
{
    /// <summary>Messages recorded in one transaction, at most.</summary>
    public int BatchSize { get; set; } = 500;

    /// <summary>How long a delivered message may go unacknowledged before JetStream delivers it again.</summary>
    public TimeSpan AckWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Connection for the leadership lock (held for the recorder's lifetime).</summary>
    public string ConnectionString { get; set; } = "";

    public string Schema { get; set; } = "cqrsi";
}

/// <summary>
/// Which log a recorder records: the JetStream stream and the durable consumer it reads it with,
/// the checkpoint it keeps in PostgreSQL, and the lock only its leader holds.
/// </summary>
internal sealed record LogSource(string Stream, string Consumer, string CheckpointId, string LockName, string Description);

/// <summary>Messages after the checkpoint arrived with a hole before them: recording restarts from the checkpoint.</summary>
internal sealed class RecorderGapException(ulong checkpoint) : Exception($"Messages after sequence {checkpoint} arrived with a hole before them");
