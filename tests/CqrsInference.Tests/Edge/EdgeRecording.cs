using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.Analytics;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Marten;
using Microsoft.Extensions.DependencyInjection;

namespace CqrsInference.Tests.Edge;

/// <summary>What the core has recorded of an edge site.</summary>
internal static class EdgeRecording
{
    /// <summary>Waits until the core host has recorded at least <paramref name="count"/> items of <paramref name="site"/>.</summary>
    public static Task WaitForCoreItemsAsync(this PipelineHost host, string site, int count, TimeSpan timeout)
    {
        var store = host.Services.GetRequiredService<IDocumentStore>();
        return Retry.Until($"the core to record {count} items of {site}", async () =>
        {
            await using var session = store.QuerySession();
            return (await session.LoadAsync<EdgeSiteStatus>(EdgeEventNames.SiteStreamId(site)))?.Items ?? 0;
        }, n => n >= count, timeout);
    }
}
