using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using NATS.Client.ObjectStore;

namespace CqrsInference.Tests.Backtests;

/// <summary>A backtest over jobs whose inputs were in the object store and are gone from it.</summary>
public sealed class BacktestExpiredInputTests(PipelineWithShortLivedBlobs pipeline) : IClassFixture<PipelineWithShortLivedBlobs>
{
    [Fact]
    public async Task Jobs_whose_stored_inputs_expired_are_skipped_with_that_reason()
    {
        var from = DateTimeOffset.UtcNow.AddSeconds(-1);
        var tenant = await pipeline.TenantClientAsync("backtest-expired", "submit", "read");
        await BacktestTests.RecordOcrJobsAsync(tenant, 3);
        var to = DateTimeOffset.UtcNow.AddSeconds(1);

        // The images (over 512 bytes) went to the object store; take them out as expiry would.
        var (client, js) = await pipeline.ConnectAsync();
        await using (client)
        {
            var store = await new NatsObjContext(js).GetObjectStoreAsync(ClaimCheck.Bucket);
            await foreach (var blob in store.ListAsync())
            {
                await store.DeleteAsync(blob.Name);
            }
        }

        var report = await BacktestTests.RunBacktestAsync(pipeline.Operator, "ppocr-rec", "4", from, to, ["backtest-expired"]);
        report.GetProperty("compared").GetInt32().ShouldBe(0);
        report.GetProperty("skipped").GetProperty("input expired").GetInt32().ShouldBe(3);
    }
}
