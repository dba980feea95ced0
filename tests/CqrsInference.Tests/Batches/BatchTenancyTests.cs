using System.Net;
using System.Net.Http.Json;
using CqrsInference.Tests.Fixtures;

namespace CqrsInference.Tests.Batches;

/// <summary>A tenant sees and controls only its own batches.</summary>
public sealed class BatchTenancyTests(PipelineRequiringKeys pipeline) : IClassFixture<PipelineRequiringKeys>
{
    [Fact]
    public async Task Another_tenants_batch_is_404_and_cannot_be_cancelled()
    {
        using var a = pipeline.ClientWith(await pipeline.CreateKeyAsync("batch-a", "submit", "read"));
        using var b = pipeline.ClientWith(await pipeline.CreateKeyAsync("batch-b", "submit", "read"));
        var submitted = await a.SubmitBatchAsync(BatchScenarios.File(Enumerable.Range(1, 3).Select(i => BatchScenarios.Line(i))));
        submitted.Status.ShouldBe(HttpStatusCode.Accepted);

        foreach (var path in new[] { "", "/results", "/errors" })
        {
            using var response = await b.GetAsync($"/v1/batches/{submitted.Id}{path}");
            response.StatusCode.ShouldBe(HttpStatusCode.NotFound, path);
        }

        using (var cancel = await b.DeleteAsync($"/v1/batches/{submitted.Id}"))
        {
            cancel.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        }

        using (var cancel = await b.PostAsync($"/v1/batches/{submitted.Id}:cancel", null))
        {
            cancel.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        }

        (await b.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/batches")).GetProperty("batches").GetArrayLength().ShouldBe(0);
        (await a.GetBatchAsync(submitted.Id)).GetProperty("status").GetString().ShouldNotBe("cancelled");
    }
}
