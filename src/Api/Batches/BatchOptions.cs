using System.ComponentModel.DataAnnotations;

namespace CqrsInference.Api.Batches;

/// <summary>The limits and rhythm of batches (section <c>Batches</c>).</summary>
public sealed class BatchOptions
{
    /// <summary>The most bytes a batch file may hold (the body of <c>POST /v1/batches</c>); more is 413.</summary>
    public const long MaxBytesCap = 1024L * 1024 * 1024;

    /// <summary>The most lines a batch file may hold; more is 413.</summary>
    [Range(1, 1_000_000)]
    public int MaxLines { get; set; } = 50_000;

    /// <summary>The most bytes a batch file may hold; more is 413.</summary>
    [Range(1, MaxBytesCap)]
    public long MaxBytes { get; set; } = 100L * 1024 * 1024;

    /// <summary>How often the batch supervisor looks at the running batches (completion, deadline).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan SuperviseEvery { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How many running batches one round looks at for completion: the next ones each round, in the
    /// order they were submitted, around again from the oldest (a batch past its deadline is looked at
    /// every round). Only the oldest were, so a tenant with that many batches running left every newer
    /// batch of every tenant running for ever.
    /// </summary>
    [Range(1, 100_000)]
    public int SupervisePage { get; set; } = 1000;

    /// <summary>
    /// How long after a batch was cancelled or expired the supervisor still ends its queued jobs: a job
    /// recorded after the batch ended (accepted just before) is caught by the next round.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan SweepAfterEnd { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How long a submit may wait for the tenant's rate to admit all its lines before it refuses the rest.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan AdmitWithin { get; set; } = TimeSpan.FromSeconds(60);
}
