using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;

namespace CqrsInference.Tests.Batches;

/// <summary>Batches through the whole pipeline in one host: per-line validation, results in input order, partial results.</summary>
public sealed class BatchSubmitTests(PipelineWithOneSlotAndFaultInjection pipeline) : IClassFixture<PipelineWithOneSlotAndFaultInjection>
{
    private readonly HttpClient _client = pipeline.Client;

    private static readonly string[] MixedLines =
    [
        BatchScenarios.Line(1),
        "{not json",
        BatchScenarios.Line(3),
        """{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,5],"data":[1,2,3,4,5]}],"customId":"wrong-shape"}""",
        BatchScenarios.Line(5)[..^1] + ",\"mode\":\"interactive\"}",
        BatchScenarios.Line(6),
    ];

    [Fact]
    public async Task A_batch_with_bad_lines_runs_the_good_ones_and_reports_the_bad_ones_by_line_in_input_order()
    {
        var submitted = await _client.SubmitBatchAsync(BatchScenarios.File(MixedLines));

        submitted.Status.ShouldBe(HttpStatusCode.Accepted);
        var refused = submitted.Body.GetProperty("refused").EnumerateArray().ToList();
        refused.Select(r => r.GetProperty("line").GetInt32()).ShouldBe([2, 4, 5]);
        refused[1].GetProperty("customId").GetString().ShouldBe("wrong-shape");
        refused[2].GetProperty("errors").TryGetProperty("mode", out _).ShouldBeTrue();

        var batch = await _client.WaitForBatchAsync(submitted.Id, BatchScenarios.Settled, "to settle");
        batch.GetProperty("status").GetString().ShouldBe("completed");
        batch.Count("succeeded").ShouldBe(3);
        batch.Count("refused").ShouldBe(3);
        batch.GetProperty("cost").GetProperty("deviceSeconds").GetDouble().ShouldBeGreaterThan(0);

        var results = await _client.LinesAsync(submitted.Id, "results");
        results.Select(r => r.GetProperty("customId").GetString()).ShouldBe(["c1", "c3", "c6"]);
        results.ShouldAllBe(r => r.GetProperty("outputs")[0].GetProperty("name").GetString() == "y");
        var errors = await _client.LinesAsync(submitted.Id, "errors");
        errors.Select(e => e.GetProperty("line").GetInt32()).ShouldBe([2, 4, 5]);
        errors.ShouldAllBe(e => e.GetProperty("error").GetProperty("code").GetString() == "invalid_request");
        BatchScenarios.ShouldHoldEveryLineOnce(results, errors, 6);

        // Each job knows its batch and line.
        var job = await _client.GetJobAsync(results[1].GetProperty("jobId").GetGuid());
        job.GetProperty("batch").GetProperty("line").GetInt32().ShouldBe(3);
        job.GetProperty("batch").GetProperty("batchId").GetGuid().ShouldBe(submitted.Id);
    }

    [Fact]
    public async Task An_atomic_batch_with_a_bad_line_is_refused_whole_and_creates_nothing()
    {
        var before = await _client.GetFromJsonAsync<JsonElement>("/v1/batches?limit=1000");
        var newestJob = (await _client.GetFromJsonAsync<JsonElement>("/v1/jobs?limit=1")).GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetGuid()).FirstOrDefault();

        var submitted = await _client.SubmitBatchAsync(BatchScenarios.File(MixedLines), "?atomic=true");

        submitted.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        var fields = submitted.Body.GetProperty("errors").EnumerateObject().Select(p => p.Name).ToList();
        fields.ShouldContain(f => f.StartsWith("lines[2]."));
        fields.ShouldContain(f => f.StartsWith("lines[4]."));
        fields.ShouldContain(f => f.StartsWith("lines[5]."));
        var after = await _client.GetFromJsonAsync<JsonElement>("/v1/batches?limit=1000");
        after.GetProperty("batches").GetArrayLength().ShouldBe(before.GetProperty("batches").GetArrayLength());
        var newestAfter = (await _client.GetFromJsonAsync<JsonElement>("/v1/jobs?limit=1")).GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetGuid()).FirstOrDefault();
        newestAfter.ShouldBe(newestJob);

        // Many bad lines: at most 50 faults listed, the rest counted (5,000 answered 259 KB).
        var many = await _client.SubmitBatchAsync(string.Concat(Enumerable.Repeat("[1]\n", 200)), "?atomic=true");
        many.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        var errors = many.Body.GetProperty("errors");
        errors.EnumerateObject().Count().ShouldBe(Commands.FieldErrors.MaxListed + 1);
        errors.GetProperty("$")[0].GetString()!.ShouldStartWith("150 more faults not listed");
    }

    [Fact]
    public async Task Results_are_partial_while_the_batch_runs_and_whole_after()
    {
        // One slot, 64 jobs a run, 15 ms each: about a second a run, four runs.
        const int lines = 200;
        var submitted = await _client.SubmitBatchAsync(BatchScenarios.File(Enumerable.Range(1, lines).Select(i => BatchScenarios.Line(i, "sleep:15"))));
        submitted.Status.ShouldBe(HttpStatusCode.Accepted);

        var partial = await Infrastructure.Retry.Until(
            "some results while the batch runs",
            async () => (Batch: await _client.GetBatchAsync(submitted.Id), Results: await _client.LinesAsync(submitted.Id, "results")),
            r => r.Results.Count > 0 && r.Results.Count < lines && r.Batch.GetProperty("status").GetString() == "running",
            pollEvery: TimeSpan.FromMilliseconds(100));
        partial.Results.Select(r => r.GetProperty("line").GetInt32()).ShouldBe(partial.Results.Select(r => r.GetProperty("line").GetInt32()).Order());
        partial.Results.ShouldAllBe(r => r.GetProperty("status").GetString() == "succeeded");

        await _client.WaitForBatchAsync(submitted.Id, BatchScenarios.Settled, "to settle", TimeSpan.FromSeconds(60));
        var results = await _client.LinesAsync(submitted.Id, "results");
        results.Select(r => r.GetProperty("customId").GetString()).ShouldBe(Enumerable.Range(1, lines).Select(i => $"c{i}"));
        (await _client.LinesAsync(submitted.Id, "errors")).ShouldBeEmpty();
    }

    [Fact]
    public async Task At_the_deadline_the_batch_expires_keeps_what_finished_and_nothing_runs_after_it()
    {
        // About a second a run of 64: the deadline passes with most lines still queued.
        const int lines = 300;
        var submitted = await _client.SubmitBatchAsync(
            BatchScenarios.File(Enumerable.Range(1, lines).Select(i => BatchScenarios.Line(i, "sleep:15"))), "?deadline=2s");
        submitted.Status.ShouldBe(HttpStatusCode.Accepted);

        var batch = await _client.WaitForBatchAsync(submitted.Id, BatchScenarios.Settled, "to settle", TimeSpan.FromSeconds(60));
        batch.GetProperty("status").GetString().ShouldBe("expired");
        var results = await _client.LinesAsync(submitted.Id, "results");
        var errors = await _client.LinesAsync(submitted.Id, "errors");
        BatchScenarios.ShouldHoldEveryLineOnce(results, errors, lines);
        results.Count.ShouldBeGreaterThan(0);
        errors.Count.ShouldBeGreaterThan(0);
        errors.ShouldAllBe(e => e.GetProperty("error").GetProperty("code").GetString() == "batch_expired");
        batch.Count("succeeded").ShouldBe(results.Count);

        // An expired line never ran: no start, no ending but its expiry.
        foreach (var error in errors.Take(50))
        {
            var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{error.GetProperty("jobId").GetGuid()}/events");
            events.EnumerateArray().Select(e => e.GetProperty("type").GetString()).ShouldNotContain(t => t == "v1.job_started" || t == "v1.job_succeeded");
        }
    }

    [Fact]
    public async Task Cancelling_a_batch_lets_its_running_line_finish_and_cancels_the_queued_ones()
    {
        // Line 1 sleeps 4 s in the only slot; a run takes at most 64 lines, so most of the 150 wait.
        const int lines = 150;
        var submitted = await _client.SubmitBatchAsync(
            BatchScenarios.File(Enumerable.Range(1, lines).Select(i => BatchScenarios.Line(i, i == 1 ? "sleep:4000" : null))));
        submitted.Status.ShouldBe(HttpStatusCode.Accepted);

        // Cancel as soon as a processor claimed line 1: before its start is reported (after 1 s), its
        // recorded status still says queued, and only its claim says that it runs.
        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            var claims = await new NATS.Client.KeyValueStore.NatsKVContext(js).GetStoreAsync(Messaging.JobClaims.Bucket);
            var running = Commands.Batches.BatchJobs.JobId(submitted.Id, 1);
            await Infrastructure.Retry.Until(
                "line 1 to be claimed by the processor",
                async () =>
                {
                    try
                    {
                        return (await claims.GetEntryAsync<string>(running.ToString("N"))).Value;
                    }
                    catch (NATS.Client.KeyValueStore.NatsKVKeyNotFoundException)
                    {
                        return null;
                    }
                },
                v => v == "running",
                pollEvery: TimeSpan.FromMilliseconds(20));
        }

        using var cancel = await _client.DeleteAsync($"/v1/batches/{submitted.Id}");
        cancel.StatusCode.ShouldBe(HttpStatusCode.OK);

        var batch = await _client.WaitForBatchAsync(submitted.Id, BatchScenarios.Settled, "to settle", TimeSpan.FromSeconds(60));
        batch.GetProperty("status").GetString().ShouldBe("cancelled");
        var results = await _client.LinesAsync(submitted.Id, "results");
        var errors = await _client.LinesAsync(submitted.Id, "errors");
        BatchScenarios.ShouldHoldEveryLineOnce(results, errors, lines);
        results[0].GetProperty("line").GetInt32().ShouldBe(1);
        results[0].GetProperty("status").GetString().ShouldBe("succeeded");
        errors.Count.ShouldBeGreaterThanOrEqualTo(lines - 64);
        errors.ShouldAllBe(e => e.GetProperty("error").GetProperty("code").GetString() == "cancelled");
        batch.Count("succeeded").ShouldBe(results.Count);
        batch.Count("cancelled").ShouldBe(errors.Count);
    }
}
