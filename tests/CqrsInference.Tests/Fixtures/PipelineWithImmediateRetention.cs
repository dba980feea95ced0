using CqrsInference.Projections.Retention;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace CqrsInference.Tests.Fixtures;

/// <summary>
/// Retention as short as its rule allows: just over the event log's age (<c>Topology:EventsMaxAge</c>
/// at its minimum, a minute; its duplicate window within it, as the server requires), as every
/// deployment must have it. The background round waits an hour;
/// the tests archive when they choose (<see cref="ArchiveAsync"/>), on a clock a retention period
/// ahead, so a job that finished a moment ago is due.
/// </summary>
public sealed class PipelineWithImmediateRetention : PipelineWithAllRoles
{
    private static readonly TimeSpan FinishedJobsAfter = TimeSpan.FromMinutes(1) + TimeSpan.FromMilliseconds(1);

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Topology:EventsMaxAge"] = "00:01:00",
        ["Topology:DuplicateWindow"] = "00:00:30",
        ["Retention:FinishedJobsAfter"] = FinishedJobsAfter.ToString(),
        ["Retention:Interval"] = "01:00:00",
        ["Audit:SealInterval"] = "00:00:00.200",
    };

    /// <summary>One round of the projections role's retention, a retention period from now; returns how many jobs it took.</summary>
    public Task<int> ArchiveAsync() =>
        ActivatorUtilities.CreateInstance<JobRetention>(Host.Services, new FakeTimeProvider(DateTimeOffset.UtcNow + FinishedJobsAfter))
            .ArchiveOnceAsync(CancellationToken.None);
}
