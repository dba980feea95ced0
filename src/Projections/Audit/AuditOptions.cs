namespace CqrsInference.Projections.Audit;

public sealed class AuditOptions
{
    public string ConnectionString { get; set; } = "";

    public string Schema { get; set; } = "cqrsi";

    /// <summary>How often the sealer looks for new events.</summary>
    public TimeSpan SealInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Events sealed per transaction.</summary>
    public int SealBatch { get; set; } = 5000;
}
