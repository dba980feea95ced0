using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;

namespace CqrsInference.Tests.Batches;

/// <summary>Batches with no processor: cancelling, and every bad input with its own 4xx.</summary>
public sealed class BatchControlTests(PipelineWithoutProcessors pipeline) : IClassFixture<PipelineWithoutProcessors>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task A_file_with_a_UTF8_byte_order_mark_reads_as_without_one()
    {
        var submitted = await _client.SubmitBatchAsync("\uFEFF" + BatchScenarios.File([BatchScenarios.Line(1), BatchScenarios.Line(2)]));

        submitted.Status.ShouldBe(HttpStatusCode.Accepted, submitted.Body.ToString());
        submitted.Body.GetProperty("refused").GetArrayLength().ShouldBe(0, submitted.Body.ToString());
        await _client.WaitForBatchAsync(submitted.Id, b => b.Count("queued") == 2, "to have both jobs queued");
        using var cancel = await _client.DeleteAsync($"/v1/batches/{submitted.Id}");
    }

    [Fact]
    public async Task A_line_whose_customId_an_earlier_line_has_is_refused_naming_that_line()
    {
        var submitted = await _client.SubmitBatchAsync(BatchScenarios.File([BatchScenarios.Line(1), BatchScenarios.Line(2), BatchScenarios.Line(1)]));

        submitted.Status.ShouldBe(HttpStatusCode.Accepted, submitted.Body.ToString());
        var refused = submitted.Body.GetProperty("refused").EnumerateArray().Single();
        refused.GetProperty("line").GetInt32().ShouldBe(3);
        refused.GetProperty("errors").GetProperty("customId")[0].GetString()!.ShouldContain("already line 1's");
        using var cancel = await _client.DeleteAsync($"/v1/batches/{submitted.Id}");
    }

    [Fact]
    public async Task Cancelling_a_batch_cancels_its_queued_jobs_and_the_batch()
    {
        var submitted = await _client.SubmitBatchAsync(BatchScenarios.File(Enumerable.Range(1, 20).Select(i => BatchScenarios.Line(i))));
        submitted.Status.ShouldBe(HttpStatusCode.Accepted);
        await _client.WaitForBatchAsync(submitted.Id, b => b.Count("queued") == 20, "to have its jobs queued");

        using var cancel = await _client.DeleteAsync($"/v1/batches/{submitted.Id}");
        cancel.StatusCode.ShouldBe(HttpStatusCode.OK);

        var batch = await _client.WaitForBatchAsync(submitted.Id, BatchScenarios.Settled, "to settle");
        batch.GetProperty("status").GetString().ShouldBe("cancelled");
        batch.Count("cancelled").ShouldBe(20);
        var errors = await _client.LinesAsync(submitted.Id, "errors");
        errors.Select(e => e.GetProperty("customId").GetString()).ShouldBe(Enumerable.Range(1, 20).Select(i => $"c{i}"));
        errors.ShouldAllBe(e => e.GetProperty("error").GetProperty("code").GetString() == "cancelled");
        (await BatchScenarios.EventCountsAsync(pipeline.Host.Schema, submitted.Id)).GetValueOrDefault("v1.job_cancelled").ShouldBe(20);

        // A line retried after the batch ended is queued again on purpose: neither the sweeps that
        // follow a batch's end (every second for Batches:SweepAfterEnd) nor a second cancel end it
        // again (they cancelled it within half a second, in the retrying key's name).
        var retried = errors[0].GetProperty("jobId").GetGuid();
        (await _client.RetryAsync(retried)).Status.ShouldBe(HttpStatusCode.Accepted);
        await _client.WaitForStatusAsync(retried, "queued");

        // Once more is harmless; a second POST :cancel too.
        using var again = await _client.PostAsync($"/v1/batches/{submitted.Id}:cancel", null);
        again.StatusCode.ShouldBe(HttpStatusCode.OK);
        await Task.Delay(TimeSpan.FromSeconds(3));
        var job = await _client.GetJobAsync(retried);
        job.GetProperty("status").GetString().ShouldBe("queued", "the retried line, 3 s after it was retried");
        job.GetProperty("series").GetInt32().ShouldBe(2);
    }

    [Theory]
    [InlineData("empty", "", "", "application/jsonl", 422)]
    [InlineData("not JSONL", "this is not json\nnor is this\n", "", "application/jsonl", 400)]
    [InlineData("a JSON array, not lines", "[1,\n2]", "", "application/jsonl", 400)]
    [InlineData("unknown option", "LINE", "?atomc=true", "application/jsonl", 422)]
    [InlineData("bad deadline", "LINE", "?deadline=tomorrow", "application/jsonl", 422)]
    [InlineData("bad atomic", "LINE", "?atomic=yes", "application/jsonl", 422)]
    [InlineData("bad priority", "LINE", "?priority=urgent", "application/jsonl", 422)]
    [InlineData("a duration deadline of no time", "LINE", "?deadline=0s", "application/jsonl", 422)]
    [InlineData("a deadline given twice", "LINE", "?deadline=5m&deadline=10m", "application/jsonl", 422)]
    [InlineData("an empty priority", "LINE", "?priority=", "application/jsonl", 422)]
    [InlineData("two Idempotency-Keys", "LINE", "KEYS", "application/jsonl", 422)]
    [InlineData("JSON, not JSONL", "LINE", "", "application/json", 415)]
    [InlineData("too many lines", "MANY", "", "application/x-ndjson", 413)]
    public async Task Bad_input_gets_its_own_4xx(string what, string body, string query, string contentType, int status)
    {
        body = body switch
        {
            "LINE" => BatchScenarios.Line(1),
            "MANY" => BatchScenarios.File(Enumerable.Repeat(BatchScenarios.Line(1), 50_001)),
            _ => body,
        };
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new(contentType);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/batches{(query == "KEYS" ? "" : query)}") { Content = content };
        if (query == "KEYS")
        {
            request.Headers.Add("Idempotency-Key", ["batch-a", "batch-b"]);
        }

        using var response = await _client.SendAsync(request);

        ((int)response.StatusCode).ShouldBe(status, what);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json", what);
    }

    [Fact]
    public async Task An_unknown_batch_is_404_everywhere()
    {
        var id = Guid.NewGuid();
        foreach (var path in new[] { $"/v1/batches/{id}", $"/v1/batches/{id}/results", $"/v1/batches/{id}/errors" })
        {
            using var response = await _client.GetAsync(path);
            response.StatusCode.ShouldBe(HttpStatusCode.NotFound, path);
        }
    }

    [Fact]
    public async Task The_same_idempotency_key_returns_the_same_batch()
    {
        var file = BatchScenarios.File(Enumerable.Range(1, 3).Select(i => BatchScenarios.Line(i)));
        async Task<JsonElement> SubmitAsync(string body, string query = "", string key = "batch-key-1")
        {
            using var content = new StringContent(body, Encoding.UTF8);
            content.Headers.ContentType = new("application/jsonl");
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/batches{query}") { Content = content };
            request.Headers.Add("Idempotency-Key", key);
            using var response = await _client.SendAsync(request);
            return await response.Content.ReadFromJsonAsync<JsonElement>();
        }

        var first = await SubmitAsync(file);
        var second = await SubmitAsync(file);
        second.GetProperty("batch").GetProperty("id").GetGuid().ShouldBe(first.GetProperty("batch").GetProperty("id").GetGuid());
        (await SubmitAsync(BatchScenarios.File([BatchScenarios.Line(9)]))).GetProperty("status").GetInt32().ShouldBe(409);
        (await SubmitAsync(file, "?priority=interactive")).GetProperty("status").GetInt32().ShouldBe(409, "the same file with other options is another request");

        // Names are matched without case: ?Priority= is the priority option, and the digest is the same.
        var options = await SubmitAsync(file, "?priority=interactive", "batch-key-2");
        (await SubmitAsync(file, "?Priority=interactive", "batch-key-2")).GetProperty("batch").GetProperty("id").GetGuid()
            .ShouldBe(options.GetProperty("batch").GetProperty("id").GetGuid());
        options.GetProperty("batch").GetProperty("priority").GetString().ShouldBe("interactive");

        // The same key at once: one batch, and every request answers with it.
        var racing = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => SubmitAsync(file, "", "batch-key-3")));
        racing.Select(r => r.GetProperty("batch").GetProperty("id").GetGuid()).Distinct().Count().ShouldBe(1, string.Join("\n", racing));
        foreach (var id in new[] { first, options, racing[0] }.Select(r => r.GetProperty("batch").GetProperty("id").GetGuid()))
        {
            using var cancel = await _client.DeleteAsync($"/v1/batches/{id}");
        }
    }

    [Fact]
    public async Task Cancels_that_race_each_answer_the_cancelled_batch_and_it_is_cancelled_once()
    {
        var submitted = await _client.SubmitBatchAsync(BatchScenarios.File(Enumerable.Range(1, 10).Select(i => BatchScenarios.Line(i))));
        await _client.WaitForBatchAsync(submitted.Id, b => b.Count("queued") == 10, "to have its jobs queued");

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(async _ =>
        {
            using var response = await _client.DeleteAsync($"/v1/batches/{submitted.Id}");
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }));

        answers.ShouldAllBe(a => a.Item1 == 200, string.Join("\n", answers));
        (await _client.GetBatchAsync(submitted.Id)).GetProperty("status").GetString().ShouldBe("cancelled");
        (await BatchScenarios.BatchEventCountAsync(pipeline.Host.Schema, submitted.Id, "v1.batch_cancelled")).ShouldBe(1);
    }
}
