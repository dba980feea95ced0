using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Npgsql;

namespace CqrsInference.Tests.Batches;

public sealed record SubmittedBatch(HttpStatusCode Status, Guid Id, JsonElement Body);

/// <summary>Batch steps written once, read as sentences in the tests.</summary>
public static class BatchScenarios
{
    /// <summary>An mlp-test line with its customId (and a test fault, when given).</summary>
    public static string Line(int i, string? fault = null) =>
        Scenarios.MlpJob([i % 7, 1, 2, 3], fault is null ? null : $$"""{"cqrsi-test-fault":"{{fault}}"}""")[..^1] + $",\"customId\":\"c{i}\"}}";

    public static string File(IEnumerable<string> lines) => string.Join("\n", lines) + "\n";

    public static async Task<SubmittedBatch> SubmitBatchAsync(this HttpClient client, string jsonl, string query = "", string contentType = "application/jsonl")
    {
        using var content = new StringContent(jsonl, Encoding.UTF8);
        content.Headers.ContentType = new(contentType);
        using var response = await client.PostAsync($"/v1/batches{query}", content);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var id = body.TryGetProperty("batch", out var batch) ? batch.GetProperty("id").GetGuid() : Guid.Empty;
        return new SubmittedBatch(response.StatusCode, id, body);
    }

    public static async Task<JsonElement> GetBatchAsync(this HttpClient client, Guid id) =>
        await client.GetFromJsonAsync<JsonElement>($"/v1/batches/{id}");

    public static Task<JsonElement> WaitForBatchAsync(
        this HttpClient client, Guid id, Func<JsonElement, bool> condition, string reason, TimeSpan? timeout = null, TimeSpan? pollEvery = null) =>
        Retry.Until($"batch {id} {reason}", () => client.GetBatchAsync(id), condition, timeout, pollEvery);

    /// <summary>Every line finished (ended, or refused) and the batch ended.</summary>
    public static bool Settled(JsonElement batch) =>
        batch.GetProperty("status").GetString() != "running"
        && batch.GetProperty("progress").GetProperty("finished").GetInt32() == batch.GetProperty("progress").GetProperty("total").GetInt32();

    /// <summary>The JSONL of <c>/results</c> or <c>/errors</c>, one element a line.</summary>
    public static async Task<List<JsonElement>> LinesAsync(this HttpClient client, Guid id, string which)
    {
        using var response = await client.GetAsync($"/v1/batches/{id}/{which}");
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/jsonl");
        var text = await response.Content.ReadAsStringAsync();
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
    }

    public static int Count(this JsonElement batch, string status) => batch.GetProperty("counts").GetProperty(status).GetInt32();

    /// <summary>How many events of <paramref name="type"/> the batch's own stream holds.</summary>
    public static async Task<int> BatchEventCountAsync(string schema, Guid batchId, string type)
    {
        await using var connection = new NpgsqlConnection(TestEnvironment.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"select count(*)::int from {schema}.mt_events where stream_id = $1 and type = $2", connection);
        command.Parameters.AddWithValue(batchId);
        command.Parameters.AddWithValue(type);
        return (int)(await command.ExecuteScalarAsync())!;
    }

    public static async Task<Dictionary<string, int>> EventCountsAsync(string schema, Guid batchId)
    {
        await using var connection = new NpgsqlConnection(TestEnvironment.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            $"""
            select e.type, count(*)::int from {schema}.mt_events e
            join {schema}.mt_doc_jobstatus j on j.id = e.stream_id
            where j.data -> 'Batch' ->> 'BatchId' = $1 group by e.type
            """, connection);
        command.Parameters.AddWithValue(batchId.ToString());
        await using var reader = await command.ExecuteReaderAsync();
        var counts = new Dictionary<string, int>();
        while (await reader.ReadAsync())
        {
            counts[reader.GetString(0)] = reader.GetInt32(1);
        }

        return counts;
    }

    /// <summary>Every line 1..<paramref name="lines"/> exactly once across results and errors, each in input order.</summary>
    public static void ShouldHoldEveryLineOnce(List<JsonElement> results, List<JsonElement> errors, int lines)
    {
        var resultLines = results.Select(r => r.GetProperty("line").GetInt32()).ToList();
        var errorLines = errors.Select(r => r.GetProperty("line").GetInt32()).ToList();
        resultLines.ShouldBe(resultLines.Order().ToList());
        errorLines.ShouldBe(errorLines.Order().ToList());
        resultLines.Concat(errorLines).Order().ShouldBe(Enumerable.Range(1, lines));
    }
}
