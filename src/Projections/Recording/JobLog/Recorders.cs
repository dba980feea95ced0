namespace CqrsInference.Projections.Recording.JobLog;

/// <summary>The recorders this process runs, one per partition of the job log.</summary>
internal sealed class Recorders(IReadOnlyList<JobLogRecorder> partitions)
{
    public IReadOnlyList<JobLogRecorder> Partitions => partitions;

    /// <summary>Events recorded since start, over all partitions.</summary>
    public long Recorded => partitions.Sum(p => p.Recorded);
}
