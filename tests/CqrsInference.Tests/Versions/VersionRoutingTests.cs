using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;
using CqrsInference.Processors.Runtime;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using CqrsInference.Tests.Processors.Runtime;
using Marten;
using Microsoft.Extensions.DependencyInjection;

namespace CqrsInference.Tests.Versions;

/// <summary>Two versions of a model served at once: the canary split, pinned jobs, and what the API says of versions.</summary>
public sealed class VersionRoutingTests(PipelineWithTwoVersions pipeline) : IClassFixture<PipelineWithTwoVersions>
{
    private readonly HttpClient _client = pipeline.Client;

    private IDocumentStore Store => pipeline.Host.Services.GetRequiredService<IDocumentStore>();

    private static string PinnedMlpJob(string version) => Scenarios.MlpJob([1, 2, 3, 4])[..^1] + $",\"modelVersion\":\"{version}\"}}";

    [Fact]
    public async Task A_90_10_split_of_2000_unpinned_jobs_runs_each_version_within_3_percent_as_the_events_and_read_model_record()
    {
        var ids = new List<Guid>();
        for (var chunk = 0; chunk < 2; chunk++)
        {
            var body = "{\"jobs\":[" + string.Join(",", Enumerable.Range(0, 1000).Select(i => Scenarios.MlpJob([i, chunk, 1, 2]))) + "]}";
            using var response = await _client.PostAsync("/v1/jobs:bulk", new StringContent(body, Encoding.UTF8, "application/json"));
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
            var jobs = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("jobs");
            ids.AddRange(jobs.EnumerateArray().Select(j => j.GetProperty("id").GetGuid()));
        }

        var statuses = await Retry.Until("all 2000 jobs to succeed",
            async () =>
            {
                await using var session = Store.QuerySession();
                return await session.Query<JobStatus>().Where(s => s.Id.IsOneOf(ids) && s.Status == JobStatuses.Succeeded).ToListAsync();
            },
            s => s.Count == 2000, TimeSpan.FromMinutes(3));

        await using var events = Store.QuerySession();
        var recorded = await events.Events.QueryAllRawEvents().Where(e => e.StreamId.IsOneOf(ids)).ToListAsync();
        var ran = recorded.Select(e => e.Data).OfType<V1.JobSucceeded>().ToDictionary(e => e.JobId);
        ran.Count.ShouldBe(2000);
        statuses.ShouldAllBe(s => ran[s.Id].Context!.ModelVersion == s.ModelVersion, "the version that ran is the version the job was routed to");
        var canary = statuses.Count(s => s.ModelVersion == "2") / 2000.0;
        canary.ShouldBe(0.10, 0.03);
        statuses.Count(s => s.ModelVersion == "1").ShouldBe(2000 - statuses.Count(s => s.ModelVersion == "2"));
    }

    [Fact]
    public async Task A_job_pinned_to_the_canary_runs_on_it_and_every_event_of_its_run_says_so()
    {
        var job = await _client.SubmitAsync(PinnedMlpJob("2"));
        job.Status.ShouldBe(HttpStatusCode.Accepted, job.Body.ToString());

        var done = await _client.WaitForStatusAsync(job.Id, "succeeded");

        done.GetProperty("modelVersion").GetString().ShouldBe("2");
        await using var session = Store.QuerySession();
        var recorded = await session.Events.FetchStreamAsync(job.Id);
        recorded.Select(e => e.Data).OfType<V1.JobSucceeded>().ShouldHaveSingleItem().Context!.ModelVersion.ShouldBe("2");
        recorded.Select(e => e.Data).OfType<V1.JobSubmitted>().ShouldHaveSingleItem().ModelVersion.ShouldBe("2");
    }

    [Fact]
    public async Task Pinning_a_version_not_served_is_refused_naming_the_served_versions()
    {
        var job = await _client.SubmitAsync(PinnedMlpJob("9"));

        job.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        job.Body.GetProperty("errors").GetProperty("modelVersion")[0].GetString()
            .ShouldBe("Version '9' of model 'mlp-test' is not served here; the served versions are: 1, 2.");
    }

    [Fact]
    public async Task The_v2_versions_path_pins_the_job_and_an_unknown_version_is_404_naming_the_served_ones()
    {
        const string body = """{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}""";

        using var pinned = await _client.PostAsync("/v2/models/mlp-test/versions/2/infer", new StringContent(body, Encoding.UTF8, "application/json"));
        using var unknown = await _client.PostAsync("/v2/models/mlp-test/versions/9/infer", new StringContent(body, Encoding.UTF8, "application/json"));

        pinned.StatusCode.ShouldBe(HttpStatusCode.OK, await pinned.Content.ReadAsStringAsync());
        (await pinned.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("model_version").GetString().ShouldBe("2");
        unknown.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await unknown.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString()
            .ShouldBe("Version '9' of model 'mlp-test' is not served here; the served versions are: 1, 2.");
    }

    [Fact]
    public async Task The_model_lists_show_each_version_with_its_state_and_routing()
    {
        var models = await _client.GetFromJsonAsync<JsonElement>("/v1/models");
        var v2 = await _client.GetFromJsonAsync<JsonElement>("/v2/models/mlp-test");

        var mlp = models.EnumerateArray().Single(m => m.GetProperty("name").GetString() == "mlp-test");
        mlp.GetProperty("versions").EnumerateArray().Select(v => v.GetString()).ShouldBe(["1", "2"]);
        mlp.GetProperty("defaultVersion").GetString().ShouldBe("1");
        mlp.GetProperty("versionDetails").EnumerateArray().Select(v => (v.GetProperty("version").GetString(), v.GetProperty("state").GetString(), v.GetProperty("default").GetBoolean(), v.GetProperty("weight").GetInt32()))
            .ShouldBe([("1", "serving", true, 90), ("2", "serving", false, 10)]);
        v2.GetProperty("versions").EnumerateArray().Select(v => v.GetString()).ShouldBe(["1", "2"]);
        v2.GetProperty("version_states").GetArrayLength().ShouldBe(2);
    }

    [Fact]
    public async Task Two_versions_of_PP_OCRv4_are_served_at_once_and_pinned_jobs_report_the_pinned_one()
    {
        var png = await RealModelTests.RenderLineAsync("Invoice 4711 paid");
        var ocr = RealModelTests.OcrJob(png)[..^1];

        var gray = await _client.SubmitAsync(ocr + ",\"modelVersion\":\"4-gray\"}");
        var color = await _client.SubmitAsync(ocr + ",\"modelVersion\":\"4\"}");
        var unpinned = await _client.SubmitAsync(ocr + "}");

        foreach (var (job, version) in new[] { (gray, "4-gray"), (color, "4"), (unpinned, "4") })
        {
            var done = await _client.WaitForStatusAsync(job.Id, "succeeded");
            done.GetProperty("modelVersion").GetString().ShouldBe(version);
            done.GetProperty("outputs")[0].GetProperty("data")[0].GetString().ShouldBe("Invoice 4711 paid");
            await using var session = Store.QuerySession();
            (await session.Events.FetchStreamAsync(job.Id)).Select(e => e.Data).OfType<V1.JobSucceeded>().ShouldHaveSingleItem().Context!.ModelVersion.ShouldBe(version);
        }
    }
}
