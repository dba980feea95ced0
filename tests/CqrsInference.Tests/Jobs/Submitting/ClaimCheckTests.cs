using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CqrsInference.Processors.Runtime;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.ObjectStore;

namespace CqrsInference.Tests.Jobs.Submitting;

/// <summary>No processor until a test starts one; anything over 512 bytes goes to the object store.</summary>
public sealed class ClaimCheckTests(PipelineWithSmallClaimCheckThreshold pipeline) : IClassFixture<PipelineWithSmallClaimCheckThreshold>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task Large_inputs_and_outputs_travel_by_reference_and_hash()
    {
        var rows = Enumerable.Range(0, 40).Select(r => new float[] { r, r / 2f, 1, -r }).ToList();
        var job = await _client.SubmitAsync(LargeJob(rows));
        await using var processor = pipeline.StartProcessor();

        var done = await _client.WaitForStatusAsync(job.Id, "succeeded");

        var y = done.GetProperty("outputs")[0].Floats();
        y.ShouldBe(rows.SelectMany(r => GeneratedModels.Mlp.Evaluate(r)).ToArray(), tolerance: 1e-4f);
        var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}/events");
        var inputsRef = events[0].GetProperty("data").GetProperty("inputsRef");
        var outputsRef = events[events.GetArrayLength() - 1].GetProperty("data").GetProperty("outputsRef");
        events[events.GetArrayLength() - 1].GetProperty("data").GetProperty("outputs").GetArrayLength().ShouldBe(0);
        done.GetProperty("outputsRef").GetProperty("sha256").GetString().ShouldBe(outputsRef.GetProperty("sha256").GetString());

        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            var store = await new NatsObjContext(js).GetObjectStoreAsync("cqrsi_blobs");
            foreach (var reference in new[] { inputsRef, outputsRef })
            {
                var bytes = await store.GetBytesAsync(reference.GetProperty("key").GetString()!);
                Convert.ToHexStringLower(SHA256.HashData(bytes)).ShouldBe(reference.GetProperty("sha256").GetString());
                bytes.Length.ShouldBe(reference.GetProperty("bytes").GetInt32());
            }
        }
    }

    [Fact]
    public async Task A_changed_blob_fails_the_job_instead_of_running_it()
    {
        var rows = Enumerable.Range(0, 40).Select(r => new float[] { 1.5f, 2.25f, r / 3f, r / 7f }).ToList();
        var job = await _client.SubmitAsync(LargeJob(rows));
        var events = await Retry.Until("the submission to be recorded",
            async () => await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}/events"), e => e.GetArrayLength() >= 1);
        var key = events[0].GetProperty("data").GetProperty("inputsRef").GetProperty("key").GetString()!;
        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            var store = await new NatsObjContext(js).GetObjectStoreAsync("cqrsi_blobs");
            await store.PutAsync(key, Encoding.UTF8.GetBytes("[]"));
        }

        await using var processor = pipeline.StartProcessor();
        var failed = await _client.WaitForStatusAsync(job.Id, "failed");

        failed.GetProperty("error").GetProperty("code").GetString().ShouldBe("input_corrupt");
        failed.GetProperty("error").GetProperty("message").GetString()!.ShouldContain("changed after it was stored");
    }

    private static string LargeJob(List<float[]> rows) =>
        $$"""{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[{{rows.Count}},4],"data":[{{string.Join(",", rows.SelectMany(r => r).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)))}}]}]}""";
}
