using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Processors.Runtime;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Submitting;

public sealed class BulkSubmitTests(PipelineWithAllRoles pipeline) : IClassFixture<PipelineWithAllRoles>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task Every_job_of_a_bulk_submit_is_accepted_in_order_and_runs()
    {
        float[][] xs = [[1, 2, 3, 4], [0, 0, 0, 1], [-1, 2, -3, 4], [9, 9, 9, 9], [0.5f, 0.25f, 0, 0]];

        var (status, body) = await BulkAsync(Bulk(xs.Select(x => Scenarios.MlpJob(x))));

        status.ShouldBe(HttpStatusCode.Accepted);
        var jobs = body.GetProperty("jobs").EnumerateArray().ToList();
        jobs.Count.ShouldBe(xs.Length);
        jobs.ShouldAllBe(j => j.GetProperty("status").GetString() == "queued");
        jobs.Select(j => j.GetProperty("id").GetGuid()).Distinct().Count().ShouldBe(xs.Length);
        for (var i = 0; i < xs.Length; i++)
        {
            var done = await _client.WaitForStatusAsync(jobs[i].GetProperty("id").GetGuid(), "succeeded");
            done.GetProperty("outputs")[0].Floats().ShouldBe(GeneratedModels.Mlp.Evaluate(xs[i]), tolerance: 1e-5f);
        }
    }

    [Fact]
    public async Task A_bulk_submit_with_faults_is_refused_naming_each_faulty_job_and_nothing_is_queued()
    {
        var before = await EventLogSizeAsync();

        var (status, body) = await BulkAsync(Bulk([
            Scenarios.MlpJob([1, 2, 3, 4]),
            """{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,5],"data":[1,2,3,4,5]}]}""",
            Scenarios.MlpJob([1, 2, 3, 4]),
            """{"model":"no-such-model","inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}""",
        ]));
        var (malformed, malformedBody) = await BulkAsync(Bulk([
            """{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],"colour":"red"}""",
            Scenarios.MlpJob([1, 2, 3, 4]),
            """{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":"1,2,3,4"}]}""",
        ]));

        status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        var errors = body.GetProperty("errors");
        errors.EnumerateObject().Select(e => e.Name).Order().ShouldBe(["jobs[1].inputs[0].shape", "jobs[3].model"]);
        errors.GetProperty("jobs[3].model")[0].GetString()!.ShouldContain("no-such-model");
        // Faults of form are found before faults against the model, as for a single submit.
        malformed.ShouldBe(HttpStatusCode.UnprocessableEntity);
        malformedBody.GetProperty("errors").EnumerateObject().Select(e => e.Name).Order().ShouldBe(["jobs[0].colour", "jobs[2].inputs[0].data"]);
        (await EventLogSizeAsync()).ShouldBe(before);
    }

    [Theory]
    [InlineData("""[]""", "jobs")]
    [InlineData("""{"jobs":{}}""", "jobs")]
    [InlineData("""{"jobs":[]}""", "jobs")]
    [InlineData("""{"jobs":[42]}""", "jobs[0]")]
    [InlineData("""{"jobs":[null]}""", "jobs[0]")]
    [InlineData("""{"job":[]}""", "jobs")]
    public async Task A_bulk_body_of_the_wrong_shape_is_refused_with_the_field_named(string json, string field)
    {
        var (status, body) = await BulkAsync(json);

        status.ShouldBeOneOf(HttpStatusCode.BadRequest, HttpStatusCode.UnprocessableEntity);
        body.GetProperty("errors").EnumerateObject().ShouldContain(e => e.Name == field || e.Name.StartsWith(field + "."));
    }

    [Fact]
    public async Task A_bulk_submit_asked_to_wait_is_refused_and_queues_nothing()
    {
        var before = await EventLogSizeAsync();
        using var response = await _client.PostAsync("/v1/jobs:bulk?wait=5s",
            new StringContent(Bulk([Scenarios.MlpJob([1, 2, 3, 4])]), Encoding.UTF8, "application/json"));

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        body.GetProperty("errors").GetProperty("wait")[0].GetString()!.ShouldContain("does not wait");
        (await EventLogSizeAsync()).ShouldBe(before);
    }

    [Fact]
    public async Task A_body_of_many_faults_gets_an_answer_of_bounded_size_that_counts_what_it_does_not_list()
    {
        // 20,000 unknown fields (~300 KB) once answered with one message each: megabytes, 16 MB at 100,000.
        var unknown = string.Join(",", Enumerable.Range(0, 20_000).Select(i => $"\"f{i}\":1"));
        var job = $$"""{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],{{unknown}}}""";

        foreach (var (path, body) in new[] { ("/v1/jobs", job), ("/v1/jobs:bulk", Bulk([job, job])) })
        {
            using var response = await _client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
            var text = await response.Content.ReadAsStringAsync();

            response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity, path);
            text.Length.ShouldBeLessThan(20_000, path);
            var errors = JsonDocument.Parse(text).RootElement.GetProperty("errors");
            errors.EnumerateObject().Count().ShouldBeLessThanOrEqualTo(Commands.FieldErrors.MaxListed + 1, path);
            errors.GetProperty("$")[0].GetString()!.ShouldStartWith(path == "/v1/jobs" ? "19950 more faults not listed" : "39950 more faults not listed", Case.Sensitive, path);
        }
    }

    [Fact]
    public async Task The_models_own_checks_list_at_most_the_bounded_number_of_faults_on_v1_and_v2()
    {
        // 20,000 inputs the model does not have (and its x missing): every fault was listed, on /v1 as
        // 20,001 entries, on /v2 as one line of 20,001 faults sorted as text (inputs[100] before inputs[2]).
        var inputs = string.Join(",", Enumerable.Range(0, 20_000).Select(i => $$"""{"name":"x{{i}}","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}"""));

        using var v1 = await _client.PostAsync("/v1/jobs", new StringContent($$"""{"model":"mlp-test","inputs":[{{inputs}}]}""", Encoding.UTF8, "application/json"));
        var v1Text = await v1.Content.ReadAsStringAsync();
        v1.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        v1Text.Length.ShouldBeLessThan(20_000);
        var errors = JsonDocument.Parse(v1Text).RootElement.GetProperty("errors");
        errors.EnumerateObject().Count().ShouldBe(Commands.FieldErrors.MaxListed + 1);
        errors.GetProperty("$")[0].GetString()!.ShouldStartWith("19951 more faults not listed");

        using var v2 = await _client.PostAsync("/v2/models/mlp-test/infer", new StringContent($$"""{"inputs":[{{inputs}}]}""", Encoding.UTF8, "application/json"));
        var v2Text = await v2.Content.ReadAsStringAsync();
        v2.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        v2Text.Length.ShouldBeLessThan(20_000);
        var error = JsonDocument.Parse(v2Text).RootElement.GetProperty("error").GetString()!;
        error.IndexOf("inputs[2]", StringComparison.Ordinal).ShouldBeLessThan(error.IndexOf("inputs[10]", StringComparison.Ordinal), "the body's order");
        error.ShouldEndWith("$: 19951 more faults not listed: an answer lists at most 50.");
    }

    [Fact]
    public async Task A_bulk_submit_of_more_than_1000_jobs_is_refused()
    {
        var (status, body) = await BulkAsync(Bulk(Enumerable.Repeat(Scenarios.MlpJob([1, 2, 3, 4]), 1001)));

        status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        body.GetProperty("errors").GetProperty("jobs")[0].GetString()!.ShouldContain("1 to 1000 jobs");
    }

    [Fact]
    public async Task A_retried_bulk_submit_with_the_same_key_answers_the_same_jobs_once()
    {
        var key = Guid.NewGuid().ToString();
        var json = Bulk([Scenarios.MlpJob([1, 1, 1, 1]), Scenarios.MlpJob([2, 2, 2, 2]), Scenarios.MlpJob([3, 3, 3, 3])]);

        var (_, first) = await BulkAsync(json, key);
        var ids = first.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetGuid()).ToList();
        var (_, early) = await BulkAsync(json, key);
        foreach (var id in ids)
        {
            await _client.WaitForStatusAsync(id, "succeeded");
        }

        var (status, late) = await BulkAsync(json, key);
        var (conflict, _) = await BulkAsync(Bulk([Scenarios.MlpJob([4, 4, 4, 4])]), key);

        early.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetGuid()).ShouldBe(ids);
        status.ShouldBe(HttpStatusCode.Accepted);
        late.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetGuid()).ShouldBe(ids);
        late.GetProperty("jobs").EnumerateArray().ShouldAllBe(j => j.GetProperty("status").GetString() == "succeeded", "a retry answers the jobs as they stand, not as queued anew");
        conflict.ShouldBe(HttpStatusCode.Conflict);
        foreach (var id in ids)
        {
            (await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}/events")).GetArrayLength().ShouldBe(2);
        }
    }

    private static string Bulk(IEnumerable<string> jobs) => $$"""{"jobs":[{{string.Join(",", jobs)}}]}""";

    private async Task<(HttpStatusCode Status, JsonElement Body)> BulkAsync(string json, string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/jobs:bulk") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        using var response = await _client.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    private async Task<long> EventLogSizeAsync()
    {
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;
        return await JobMessages.CountAsync(js, NatsTopology.EventsStream);
    }
}
