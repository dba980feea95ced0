using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using CqrsInference.Tests.Jobs.Webhooks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using StandardWebhooks;

namespace CqrsInference.Tests.Batches;

/// <summary>
/// A batch's <c>webhook</c> is called once when the batch ends, by the jobs' webhook dispatcher:
/// signed for the tenant (Standard Webhooks), with the batch's view (status and counts).
/// </summary>
public sealed class BatchWebhookTests(PipelineWithWebhooks pipeline) : IClassFixture<PipelineWithWebhooks>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task A_batch_that_completes_calls_its_webhook_once_signed_with_its_status_and_counts()
    {
        using var receiver = new WebhookReceiver(pipeline.AllowedPort());
        const int lines = 5;
        var file = BatchScenarios.File(Enumerable.Range(1, lines).Select(i => BatchScenarios.Line(i)).Append("{not json"));

        var submitted = await _client.SubmitBatchAsync(file, $"?webhook={Uri.EscapeDataString(receiver.Url)}");
        submitted.Status.ShouldBe(HttpStatusCode.Accepted);

        await Retry.Until("the batch's webhook to be called", () => Task.FromResult(receiver.Calls.Count), n => n >= 1);
        var call = receiver.Calls.ShouldHaveSingleItem();
        call.Status.ShouldBe(200);
        var body = JsonDocument.Parse(call.Body).RootElement;
        body.GetProperty("type").GetString().ShouldBe("batch.completed");
        body.GetProperty("id").GetGuid().ShouldBe(submitted.Id);
        body.GetProperty("status").GetString().ShouldBe("completed");
        body.Count("succeeded").ShouldBe(lines);
        body.Count("refused").ShouldBe(1);
        body.GetProperty("progress").GetProperty("finished").GetInt32().ShouldBe(lines + 1);
        call.Headers["webhook-id"].ShouldBe($"{submitted.Id}:ended");

        // The tenant verifies it with its Standard Webhooks secret, as for a job's call.
        var key = await pipeline.Operator.GetFromJsonAsync<JsonElement>("/v1/admin/webhook-key?tenant=default");
        var webhook = new StandardWebhook(key.GetProperty("secret").GetString()!);
        webhook.Verify(call.Body, new HeaderDictionary(call.Headers.ToDictionary(h => h.Key, h => new StringValues(h.Value))));

        // Called once: the supervisor's later rounds owe nothing more. A second batch to the same
        // endpoint, submitted after the first call, ends rounds later; by its call, none came again.
        var second = await _client.SubmitBatchAsync(BatchScenarios.File([BatchScenarios.Line(9)]), $"?webhook={Uri.EscapeDataString(receiver.Url)}");
        await Retry.Until("the second batch's webhook to be called", () => Task.FromResult(receiver.Calls.Count), n => n >= 2);
        await _client.WaitForBatchAsync(second.Id, b => b.GetProperty("status").GetString() == "completed", "to complete");
        receiver.Calls.Select(c => JsonDocument.Parse(c.Body).RootElement.GetProperty("id").GetGuid()).ShouldBe([submitted.Id, second.Id]);
    }

    [Fact]
    public async Task A_cancelled_batch_calls_its_webhook_with_its_cancelled_status()
    {
        using var receiver = new WebhookReceiver(pipeline.AllowedPort());
        // Cancelled at once: its 1,000 lines do not all end, and get recorded, before the cancel (a
        // batch whose every line has ended is not cancelled: 409, it is completing).
        var submitted = await _client.SubmitBatchAsync(
            BatchScenarios.File(Enumerable.Range(1, 1000).Select(i => BatchScenarios.Line(i))), $"?webhook={Uri.EscapeDataString(receiver.Url)}");
        submitted.Status.ShouldBe(HttpStatusCode.Accepted);

        using var cancel = await _client.DeleteAsync($"/v1/batches/{submitted.Id}");
        cancel.StatusCode.ShouldBe(HttpStatusCode.OK);

        await Retry.Until("the batch's webhook to be called", () => Task.FromResult(receiver.Calls.Count), n => n >= 1);
        var body = JsonDocument.Parse(receiver.Calls.ShouldHaveSingleItem().Body).RootElement;
        body.GetProperty("id").GetGuid().ShouldBe(submitted.Id);
        body.GetProperty("type").GetString().ShouldBe("batch.cancelled");
        body.GetProperty("status").GetString().ShouldBe("cancelled");
    }
}
