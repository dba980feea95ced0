namespace CqrsInference.Projections.Audit;

/// <summary>
/// The sealer's own high-water mark, so that a round costs what is new, never what is old. Every
/// sequence number up to <see cref="Mark"/> is either sealed or a known gap: a number drawn by a
/// transaction not (yet) visible, which a late commit may still fill, or which a rollback left
/// empty for good. A round reads the events above the highest sealed sequence and those at the open
/// gaps (index probes, however long the history); a gap is watched for
/// <see cref="AuditOptions.LateCommitWindow"/> after it was first seen, then given up (an event
/// that commits later still is left unsealed, which verify counts). State is per process: where
/// two processes take turns under the sealer's lock, each finds the other's seals in the seal table.
/// </summary>
internal sealed class SealFrontier(TimeSpan lateCommitWindow, long initialLookBack, int maxGaps)
{
    private readonly SortedDictionary<long, DateTimeOffset> _gaps = [];

    /// <summary>Up to here every number is sealed or a gap; null until the first round.</summary>
    public long? Mark { get; private set; }

    /// <summary>Gaps being watched.</summary>
    public int OpenGaps => _gaps.Count;

    /// <summary>
    /// Where to look for new gaps this round: above the mark, or on a process's first round a
    /// bounded look back below the highest seal (a late commit may straddle a restart).
    /// </summary>
    public long ScanFrom(long highestSealed) => Mark ?? Math.Max(0, highestSealed - initialLookBack);

    /// <summary>The gaps worth probing now: the watched ones still in their window, and the new ones.</summary>
    public long[] Probe(IEnumerable<long> newGaps, DateTimeOffset now) =>
        _gaps.Where(g => now - g.Value < lateCommitWindow).Select(g => g.Key).Concat(newGaps).Distinct().Order().ToArray();

    /// <summary>After a committed round: the mark moves to the highest seal, new gaps are watched, filled and expired ones dropped.</summary>
    public void Advance(long highestSealed, IEnumerable<long> newGaps, IEnumerable<long> sealedNow, DateTimeOffset now)
    {
        foreach (var gap in newGaps)
        {
            _gaps.TryAdd(gap, now);
        }

        foreach (var sequence in sealedNow)
        {
            _gaps.Remove(sequence);
        }

        foreach (var expired in _gaps.Where(g => now - g.Value >= lateCommitWindow).Select(g => g.Key).ToList())
        {
            _gaps.Remove(expired);
        }

        while (_gaps.Count > maxGaps)
        {
            _gaps.Remove(_gaps.Keys.First());
        }

        Mark = Math.Max(Mark ?? 0, highestSealed);
    }
}
