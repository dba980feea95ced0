using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.JetStream.Models;
using NATS.Client.ObjectStore;
using NATS.Net;

namespace CqrsInference.Tests.Jobs.Submitting;

/// <summary>
/// Stored inputs and outputs are kept ClaimCheck:MaxAge and at most ClaimCheck:MaxBytes in all
/// (the bucket stream's own limits); a job whose outputs are gone says so instead of failing.
/// </summary>
public sealed class BlobRetentionTests(PipelineWithShortLivedBlobs pipeline) : IClassFixture<PipelineWithShortLivedBlobs>
{
    [Fact]
    public async Task Outputs_older_than_max_age_are_answered_as_expired_not_as_an_error()
    {
        var rows = Enumerable.Range(0, 40).Select(r => new float[] { r, 1, r / 4f, -1 }).ToList();
        var job = await pipeline.Client.SubmitAsync(LargeJob(rows));
        var done = await pipeline.Client.WaitForStatusAsync(job.Id, "succeeded");
        done.GetProperty("outputs")[0].GetProperty("data").GetArrayLength().ShouldBeGreaterThan(0);
        done.GetProperty("outputsExpired").GetBoolean().ShouldBeFalse();

        var expired = await Retry.Until("the outputs to expire", () => pipeline.Client.GetJobAsync(job.Id),
            j => j.GetProperty("outputsExpired").GetBoolean(), timeout: TimeSpan.FromSeconds(60), pollEvery: TimeSpan.FromMilliseconds(500));

        expired.GetProperty("status").GetString().ShouldBe("succeeded");
        expired.GetProperty("outputs").ValueKind.ShouldBe(JsonValueKind.Null);
        expired.GetProperty("outputsRef").GetProperty("sha256").GetString().ShouldBe(done.GetProperty("outputsRef").GetProperty("sha256").GetString());
        using var then = await pipeline.Client.GetAsync($"/v1/jobs/{job.Id}?version=2");
        then.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await then.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("outputsExpired").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task The_bucket_stream_carries_the_configured_limits()
    {
        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            var config = (await js.GetStreamAsync(ClaimCheck.BucketStream)).Info.Config;

            config.MaxAge.ShouldBe(PipelineWithShortLivedBlobs.MaxAge);
            config.MaxBytes.ShouldBe(new ClaimCheckOptions().MaxBytes);
            config.Discard.ShouldBe(StreamConfigDiscard.Old);
        }
    }

    [Fact]
    public async Task A_bucket_made_before_the_limits_takes_them_and_drops_its_oldest_blobs_when_full()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var nats = new NatsClient(server.Url);
        var js = nats.CreateJetStreamContext();
        await new NatsObjContext(js).CreateObjectStoreAsync(new NatsObjConfig(ClaimCheck.Bucket) { Storage = NatsObjStorageType.File });
        var options = new ClaimCheckOptions { ThresholdBytes = 512, MaxAge = TimeSpan.FromHours(1), MaxBytes = 1024 * 1024 };

        await ClaimCheck.EnsureBucketAsync(js, options, replicas: 1, CancellationToken.None);
        await ClaimCheck.EnsureBucketAsync(js, options, replicas: 1, CancellationToken.None);

        var config = (await js.GetStreamAsync(ClaimCheck.BucketStream)).Info.Config;
        (config.MaxAge, config.MaxBytes, config.Discard).ShouldBe((TimeSpan.FromHours(1), 1024L * 1024, StreamConfigDiscard.Old));
        var claimCheck = new ClaimCheck(js, options);
        var blobs = new List<BlobRef>();
        for (var i = 0; i < 3; i++)
        {
            blobs.Add((await claimCheck.OffloadAsync([Tensor400KB(i)], CancellationToken.None)).Ref!);
        }

        var oldest = await Should.ThrowAsync<InvalidDataException>(() => claimCheck.LoadAsync(blobs[0], CancellationToken.None));
        BlobExpired.IsExpired(oldest).ShouldBeTrue(oldest.Message);
        (await claimCheck.LoadAsync(blobs[2], CancellationToken.None))[0].Name.ShouldBe("x2");
    }

    [Fact]
    public async Task A_size_cap_the_server_cannot_reserve_is_refused_naming_the_setting()
    {
        await using var server = await NatsServerProcess.StartWithConfigAsync((port, directory) => $$"""
            listen: "127.0.0.1:{{port}}"
            jetstream { store_dir: "{{directory}}/js", max_file_store: 64MB }
            """);
        await using var nats = new NatsClient(server.Url);

        var refused = await Should.ThrowAsync<InvalidOperationException>(() =>
            ClaimCheck.EnsureBucketAsync(nats.CreateJetStreamContext(), new ClaimCheckOptions(), replicas: 1, CancellationToken.None));

        refused.Message.ShouldContain("ClaimCheck:MaxBytes");
        refused.Message.ShouldContain("max_file_store");
    }

    private static Tensor Tensor400KB(int i) =>
        new($"x{i}", "FP32", [100_000], JsonDocument.Parse($"[{i},{string.Join(",", Enumerable.Repeat("1.5", 99_999))}]").RootElement);

    private static string LargeJob(List<float[]> rows) =>
        $$"""{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[{{rows.Count}},4],"data":[{{string.Join(",", rows.SelectMany(r => r).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)))}}]}]}""";
}
