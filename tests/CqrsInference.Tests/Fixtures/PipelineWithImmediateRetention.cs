using CqrsInference.Projections.Retention;
using Microsoft.Extensions.DependencyInjection;

namespace CqrsInference.Tests.Fixtures;

/// <summary>
/// Jobs are due for archiving a millisecond after they finish; the background round waits an hour,
/// so the tests archive when they choose (<see cref="ArchiveAsync"/>).
/// </summary>
public sealed class PipelineWithImmediateRetention : PipelineWithAllRoles
{
    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Retention:FinishedJobsAfter"] = "00:00:00.001",
        ["Retention:Interval"] = "01:00:00",
        ["Audit:SealInterval"] = "00:00:00.200",
    };

    /// <summary>One round of the projections role's retention; returns how many jobs it took.</summary>
    public Task<int> ArchiveAsync() => Host.Services.GetRequiredService<JobRetention>().ArchiveOnceAsync(CancellationToken.None);
}
