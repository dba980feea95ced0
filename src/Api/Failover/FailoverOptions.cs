using System.ComponentModel.DataAnnotations;

namespace CqrsInference.Api.Failover;

/// <summary>Region failover (section <c>Failover</c>; docs/ARCHITECTURE.md, "Region failover").</summary>
public sealed class FailoverOptions
{
    /// <summary>
    /// The regions (clusters of the super-cluster) that keep a standby mirror of the log, claims,
    /// inputs and keys (<c>Failover:StandbyRegions</c>); the same list on every API. The region the
    /// streams live in (the home) is skipped, so after a takeover the old home becomes a standby
    /// once its servers are back. Empty: no mirrors, no takeover.
    /// </summary>
    public List<string> StandbyRegions { get; set; } = [];

    /// <summary>Replicas of each mirror in its region (<c>Failover:Replicas</c>): at most that region's servers.</summary>
    [Range(1, 5)]
    public int Replicas { get; set; } = 1;

    /// <summary>How often the API role makes sure the mirrors exist (<c>Failover:Every</c>): a returning region gets its mirrors within this.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan Every { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// After how long without an answer from the log's region this API's region takes over by
    /// itself (<c>Failover:TakeOverAfter</c>; unset, the default: only the operator's
    /// <c>POST /v1/admin/failover</c> does). Set it where a witness region keeps the metadata's
    /// majority and a partition cannot leave the home accepting on its own (docs/ARCHITECTURE.md).
    /// </summary>
    public TimeSpan? TakeOverAfter { get; set; }

    /// <summary>The most jobs an API's region holds while the home is lost (<c>Failover:HeldMaxJobs</c>); past it, submits are 503.</summary>
    [Range(1L, long.MaxValue)]
    public long HeldMaxJobs { get; set; } = 1_000_000;

    /// <summary>What is wrong with the list, if anything (checked at start).</summary>
    public static string? Problem(FailoverOptions options) =>
        options.StandbyRegions.FirstOrDefault(r => !Commands.Models.Naming.IsToken(r)) is { } bad
            ? $"Failover:StandbyRegions '{bad}' is not a valid region: a region is {Commands.Models.Naming.TokenRule}."
            : options.TakeOverAfter is { } after && after < TimeSpan.FromSeconds(2)
                ? $"Failover:TakeOverAfter is {after}: at least 00:00:02 (a leader election must not look like a lost region)."
                : null;
}
