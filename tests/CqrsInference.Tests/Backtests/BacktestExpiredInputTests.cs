using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;

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

        // The images (over 512 bytes) went to the object store; take them out as MaxAge would:
        // the bucket's stream loses its messages.
        var (client, js) = await pipeline.ConnectAsync();
        await using (client)
        {
            await js.PurgeStreamAsync(ClaimCheck.BucketStream, new NATS.Client.JetStream.Models.StreamPurgeRequest());
        }

        var report = await BacktestTests.RunBacktestAsync(pipeline.Operator, "ppocr-rec", "4", from, to, ["backtest-expired"]);
        report.GetProperty("compared").GetInt32().ShouldBe(0);
        report.GetProperty("skipped").GetProperty("input expired").GetInt32().ShouldBe(3);
    }
}
