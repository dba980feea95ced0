using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Cancelling;

/// <summary>
/// Cancels of one queued job at once (no processor here: it stays queued): the log keeps one, and
/// every answer names that one's time, as the job reads once it is recorded.
/// </summary>
public sealed class CancelsAtOnceTests(PipelineWithTenantLimits pipeline) : IClassFixture<PipelineWithTenantLimits>
{
    [Fact]
    public async Task Every_answer_to_cancels_at_once_names_the_cancel_the_log_kept()
    {
        using var client = await pipeline.NewTenantAsync("roomy");
        using var submitted = await client.PostAsync("/v1/jobs", new StringContent(Scenarios.MlpJob([1, 2, 3, 4]), Encoding.UTF8, "application/json"));
        var job = (await submitted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        var answers = await Task.WhenAll(Enumerable.Range(0, 12).Select(async i =>
        {
            using var response = i % 2 == 0 ? await client.DeleteAsync($"/v1/jobs/{job}") : await client.PostAsync($"/v1/jobs/{job}:cancel", null);
            response.StatusCode.ShouldBe(HttpStatusCode.OK);
            return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("completedAt").GetDateTimeOffset();
        }));

        var events = await Retry.Until("the cancel to be recorded", () => client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job}/events"),
            e => e.EnumerateArray().Any(x => x.GetProperty("type").GetString() == "v1.job_cancelled"));
        var cancels = events.EnumerateArray().Where(x => x.GetProperty("type").GetString() == "v1.job_cancelled").ToList();
        var recorded = cancels.ShouldHaveSingleItem().GetProperty("data").GetProperty("cancelledAt").GetDateTimeOffset();
        answers.ShouldAllBe(at => at == recorded, $"recorded {recorded:O}; answered {string.Join(", ", answers.Select(a => a.ToString("O")))}");
    }
}
