using System.ComponentModel.DataAnnotations;

namespace CqrsInference.Projections.Audit;

public sealed class AuditOptions
{
    public string ConnectionString { get; set; } = "";

    public string Schema { get; set; } = "cqrsi";

    /// <summary>How often the sealer looks for new events.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan SealInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Events sealed per transaction.</summary>
    [Range(1, 1_000_000)]
    public int SealBatch { get; set; } = 5000;

    /// <summary>
    /// How long the sealer watches a gap in the sequence (a number drawn by a transaction not yet
    /// visible) for a late commit before giving it up; see <see cref="SealFrontier"/>.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan LateCommitWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long the audit feed's query (<c>GET /v1/audit/events</c>) may wait for PostgreSQL: a
    /// server that hangs answers the caller 503 within the API's request bound plus this, not the
    /// driver's 30 s. Whole seconds.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan FeedCommandTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Events a replay reads, folds, writes and compares at a time: its memory bound.</summary>
    [Range(1, 1_000_000)]
    public int ReplayPage { get; set; } = 10_000;

    /// <summary>Differing documents a replay lists; the rest are only counted.</summary>
    [Range(0, 100_000)]
    public int ReplayListedDifferences { get; set; } = 100;

    /// <summary>
    /// Test hook, null in production: awaited by a replay before each page it reads, while it holds
    /// the replay lock, so a test can hold a replay open and prove that a second one is refused.
    /// </summary>
    public Func<CancellationToken, Task>? ReplayPageHook { get; set; }
}
