using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Processors.Runtime;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Shadows;

/// <summary>
/// Shadow runs through real servers: each succeeded job of a shadowed model runs again on the shadow
/// version, its result is recorded after the job's ending and rolled up per hour; the caller gets
/// the primary's answer only, and usage and cost count each job once.
/// </summary>
public sealed class ShadowRunTests(PipelineWithShadows pipeline) : IClassFixture<PipelineWithShadows>
{
    [Fact]
    public async Task Jobs_of_a_model_with_an_identical_shadow_agree_fully_and_callers_see_only_the_primary_answer()
    {
        var inputs = Enumerable.Range(0, 5).Select(i => new[] { i, 1f, -2f, 0.5f }).ToList();
        var ids = await RunAsync("mlp-test", inputs);

        var row = await ShadowRowAsync("mlp-test", "1-shadow", ids.Count);
        row.GetProperty("identical").GetInt64().ShouldBe(ids.Count);
        row.GetProperty("agreementRate").GetDouble().ShouldBe(1.0);
        row.GetProperty("outputs").GetProperty("y").GetDouble().ShouldBe(1.0);
        row.GetProperty("failed").GetInt64().ShouldBe(0);
        row.GetProperty("shadowRunP50Ms").GetDouble().ShouldBeGreaterThan(0);

        for (var i = 0; i < ids.Count; i++)
        {
            var job = await pipeline.Client.GetJobAsync(ids[i]);
            job.GetProperty("status").GetString().ShouldBe("succeeded");
            job.GetProperty("outputs").EnumerateArray().Single().Floats().ShouldBe(GeneratedModels.Mlp.Evaluate(inputs[i]), 1e-5f);
        }

        var callers = await pipeline.Client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{ids[0]}/events");
        callers.EnumerateArray().Select(e => e.GetProperty("type").GetString()).ShouldNotContain("v1.job_shadow_result");
        var operators = await pipeline.Operator.GetFromJsonAsync<JsonElement>($"/v1/jobs/{ids[0]}/events");
        var shadow = operators.EnumerateArray().Last();
        shadow.GetProperty("type").GetString().ShouldBe("v1.job_shadow_result");
        shadow.GetProperty("data").GetProperty("primaryVersion").GetString().ShouldBe("1");

        // The audit feed likewise: the tenant's auditor read the shadow's outputs there.
        using var auditor = await pipeline.TenantClientAsync("default", "auditor");
        (await AuditedTypesAsync(auditor, ids[0])).ShouldNotContain("v1.job_shadow_result");
        (await AuditedTypesAsync(pipeline.Operator, ids[0])).ShouldContain("v1.job_shadow_result");
    }

    /// <summary>The types of a job's events in the audit feed, every page read.</summary>
    private static async Task<List<string>> AuditedTypesAsync(HttpClient client, Guid job)
    {
        var types = new List<string>();
        long? from = 0;
        while (from is { } next)
        {
            var page = await client.GetFromJsonAsync<JsonElement>($"/v1/audit/events?fromSequence={next}&limit=1000");
            types.AddRange(page.GetProperty("events").EnumerateArray()
                .Where(e => e.GetProperty("streamId").GetGuid() == job).Select(e => e.GetProperty("type").GetString()!));
            from = page.GetProperty("nextSequence").ValueKind == JsonValueKind.Number ? page.GetProperty("nextSequence").GetInt64() : null;
        }

        return types;
    }

    [Fact]
    public async Task A_different_shadow_shows_disagreement_and_usage_counts_each_job_once()
    {
        var inputs = Enumerable.Range(0, 4).Select(i => new[] { 1f, i, 0.25f, -1f }).ToList();
        var ids = await RunAsync("mlp-shadowed", inputs);

        var row = await ShadowRowAsync("mlp-shadowed", "2", ids.Count);
        row.GetProperty("identical").GetInt64().ShouldBe(0);
        row.GetProperty("agreementRate").GetDouble().ShouldBe(0.0);
        row.GetProperty("outputs").GetProperty("y").GetDouble().ShouldBe(0.0);

        var jobs = new List<JsonElement>();
        foreach (var id in ids)
        {
            var job = await pipeline.Client.GetJobAsync(id);
            job.GetProperty("outputs").EnumerateArray().Single().Floats().ShouldBe(GeneratedModels.Mlp.Evaluate(inputs[jobs.Count]), 1e-5f);
            jobs.Add(job);
        }

        // Usage and cost are the primary's jobs alone: their device seconds, each job once.
        var busy = Math.Round(jobs.Sum(j => j.GetProperty("runMs").GetDouble() / j.GetProperty("batchSize").GetInt32() / 1000), 6);
        var usage = await Retry.Until("the usage roll-up to count the jobs", () => UsageAsync("mlp-shadowed"), u => u.Succeeded == ids.Count);
        usage.Submitted.ShouldBe(ids.Count);
        usage.BusySeconds.ShouldBe(busy, 1e-5);
    }

    private async Task<List<Guid>> RunAsync(string model, IReadOnlyList<float[]> inputs)
    {
        var ids = new List<Guid>();
        foreach (var x in inputs)
        {
            var submitted = await pipeline.Client.SubmitAsync(Scenarios.MlpJob(x).Replace("\"mlp-test\"", $"\"{model}\"", StringComparison.Ordinal));
            submitted.Status.ShouldBe(System.Net.HttpStatusCode.Accepted);
            ids.Add(submitted.Id);
        }

        foreach (var id in ids)
        {
            await pipeline.Client.WaitForStatusAsync(id, "succeeded");
        }

        return ids;
    }

    private Task<JsonElement> ShadowRowAsync(string model, string version, int compared) =>
        Retry.Until(
            $"the shadow roll-up of {model} to compare {compared} jobs",
            async () =>
            {
                var rows = await pipeline.Operator.GetFromJsonAsync<JsonElement>($"/v1/analytics/shadow?model={model}&from={Iso(DateTimeOffset.UtcNow.AddHours(-2))}");
                return rows.EnumerateArray().SingleOrDefault(r => r.GetProperty("shadowVersion").GetString() == version);
            },
            row => row.ValueKind == JsonValueKind.Object && row.GetProperty("compared").GetInt64() == compared);

    private async Task<(long Submitted, long Succeeded, double BusySeconds)> UsageAsync(string model)
    {
        var rows = await pipeline.Operator.GetFromJsonAsync<JsonElement>($"/v1/analytics/usage?from={Iso(DateTimeOffset.UtcNow.AddHours(-2))}&groupBy=model");
        var mine = rows.EnumerateArray().Where(r => r.GetProperty("model").GetString() == model).ToList();
        return (mine.Sum(r => r.GetProperty("submitted").GetInt64()), mine.Sum(r => r.GetProperty("succeeded").GetInt64()), mine.Sum(r => r.GetProperty("busySeconds").GetDouble()));
    }

    private static string Iso(DateTimeOffset time) => Uri.EscapeDataString(time.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
}
