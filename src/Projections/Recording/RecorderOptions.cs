using System.ComponentModel.DataAnnotations;

namespace CqrsInference.Projections.Recording;

/// <summary>How far a recorder has recorded its log (the JetStream stream sequence), stored with every batch.</summary>
public sealed record RecorderCheckpoint(string Id, ulong Sequence);

public sealed class RecorderOptions
{
    /// <summary>Messages recorded in one transaction, at most.</summary>
    [Range(1, 100_000)]
    public int BatchSize { get; set; } = 1000;

    /// <summary>
    /// How long a recorder lets deliveries gather after the first before it records them, unless a
    /// whole batch is there already: at a few hundred jobs a second, recording each delivery as it
    /// comes meant a transaction for every one or two events (measured at 200 jobs/s: 317 commits a
    /// second and PostgreSQL at half a core; gathered for 50 ms, 54 commits and a tenth of a core).
    /// It delays only the read models (the API answers for accepted and ended jobs from memory); zero
    /// records each delivery at once.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:01")]
    public TimeSpan Linger { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>How long a delivered message may go unacknowledged before JetStream delivers it again.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan AckWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Connection for the leadership locks (held for each recorder's lifetime).</summary>
    public string ConnectionString { get; set; } = "";

    public string Schema { get; set; } = "cqrsi";

    /// <summary>How long a recorder waits for deliveries before it checks that none was lost at the tail.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan IdleCheck { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The event log's duplicate window (<c>Topology:DuplicateWindow</c>): a submission with a random
    /// id younger than this is in the log once, so its stream needs no look-up.
    /// </summary>
    public TimeSpan DuplicateWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Jobs not yet ended whose stream state a partition's recorder keeps in memory, at most.</summary>
    [Range(0, 10_000_000)]
    public int CachedJobs { get; set; } = 100_000;

    /// <summary>
    /// Whether a job's submission keeps its inline inputs in the history (<c>V1.JobSubmitted.Inputs</c>),
    /// so that a backtest can run them again. They are in the recorder's hands already (the queued
    /// message): keeping them costs the submit path nothing, the event store their size. Inputs in the
    /// object store are not copied (they expire with <c>ClaimCheck:MaxAge</c>). Off: no job's inputs are
    /// kept after it ran (see docs/CONFIGURATION.md on privacy).
    /// </summary>
    public bool KeepInputs { get; set; } = true;
}

/// <summary>
/// Which log a recorder records: the JetStream stream, the durable consumer it reads it with (and
/// the part of the stream it reads, for a partition), the checkpoint it keeps in PostgreSQL, and the
/// lock only its leader holds.
/// </summary>
public sealed record LogSource(string Stream, string Consumer, string? FilterSubject, string CheckpointId, string LockName, string Description);

/// <summary>Messages after the checkpoint arrived with a hole before them: recording restarts from the checkpoint.</summary>
internal sealed class RecorderGapException(string stream, ulong checkpoint)
    : Exception($"Deliveries of {stream} after sequence {checkpoint} arrived with a hole before them");
