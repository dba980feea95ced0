using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Security;

/// <summary>No processor (jobs pile up), a tight rate for tenant default and a roomy one for tenant "roomy".</summary>
public sealed class LimitsTests(PipelineWithTenantLimits pipeline) : IClassFixture<PipelineWithTenantLimits>
{
    [Fact]
    public async Task A_tenant_over_its_rate_gets_429_with_retry_after_while_others_go_on()
    {
        using var limited = pipeline.As(PipelineRequiringKeys.AdminKey);
        using var roomy = await pipeline.NewTenantAsync("roomy");

        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 4; i++)
        {
            answers.Add(await limited.PostAsync("/v1/jobs", Body()));
        }

        answers.Take(3).ShouldAllBe(r => r.StatusCode == HttpStatusCode.Accepted);
        answers[3].StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
        answers[3].Headers.RetryAfter!.Delta!.Value.TotalSeconds.ShouldBeGreaterThanOrEqualTo(1);
        answers[3].Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        (await roomy.PostAsync("/v1/jobs", Body())).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        answers.ForEach(a => a.Dispose());
    }

    [Fact]
    public async Task A_full_queue_gets_503_with_retry_after_instead_of_growing()
    {
        using var roomy = await pipeline.NewTenantAsync("roomy");

        // ppocr-rec, so that the other tests' mlp-test jobs still fit in their queue.
        var refused = await Retry.Until(
            "the queue to fill past its limit",
            async () => await roomy.PostAsync("/v1/jobs", new StringContent(Processors.Runtime.RealModelTests.OcrJob([1, 2, 3]), Encoding.UTF8, "application/json")),
            response => response.StatusCode == HttpStatusCode.ServiceUnavailable);

        refused.Headers.RetryAfter!.Delta!.Value.TotalSeconds.ShouldBe(5);
        (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString()!.ShouldContain("of this tenant's jobs wait for model 'ppocr-rec'");

        // The limit is per tenant: another tenant's job for the same model is still taken.
        using var other = await pipeline.NewTenantAsync("neighbour");
        using var taken = await other.PostAsync("/v1/jobs", new StringContent(Processors.Runtime.RealModelTests.OcrJob([4, 5, 6]), Encoding.UTF8, "application/json"));
        taken.StatusCode.ShouldBe(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task A_tenant_past_its_daily_quota_gets_429_until_midnight()
    {
        using var tiny = await pipeline.NewTenantAsync("tiny");

        (await tiny.PostAsync("/v1/jobs", Body())).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await tiny.PostAsync("/v1/jobs", Body())).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        using var refused = await tiny.PostAsync("/v1/jobs", Body());

        refused.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
        refused.Headers.RetryAfter!.Delta!.Value.ShouldBeLessThanOrEqualTo(TimeSpan.FromDays(1));
        (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("title").GetString().ShouldBe("Quota exhausted");
    }

    [Fact]
    public async Task A_bulk_submit_takes_one_rate_token_per_job_and_a_bulk_larger_than_the_burst_is_refused_as_such()
    {
        using var bulky = await pipeline.NewTenantAsync("bulky");

        using var tooLarge = await bulky.PostAsync("/v1/jobs:bulk", Bulk(4));
        using var fits = await bulky.PostAsync("/v1/jobs:bulk", Bulk(3));
        using var over = await bulky.PostAsync("/v1/jobs", Body());

        tooLarge.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await tooLarge.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").GetProperty("jobs")[0].GetString()!.ShouldContain("at most 3 jobs at once");
        fits.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        over.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
    }

    [Fact]
    public async Task A_bulk_submit_past_the_daily_quota_is_refused_whole_and_counts_nothing()
    {
        using var small = await pipeline.NewTenantAsync("small");

        using var refused = await small.PostAsync("/v1/jobs:bulk", Bulk(4));
        using var fits = await small.PostAsync("/v1/jobs:bulk", Bulk(3));
        using var past = await small.PostAsync("/v1/jobs", Body());

        refused.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
        (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("title").GetString().ShouldBe("Quota exhausted");
        fits.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await fits.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("jobs").GetArrayLength().ShouldBe(3);
        past.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
    }

    [Fact]
    public async Task A_tenant_holding_its_streams_gets_429_for_another_while_other_tenants_open_theirs_and_a_closed_one_frees_its_place()
    {
        using var streamy = await pipeline.NewTenantAsync("streamy");
        using var roomy = await pipeline.NewTenantAsync("roomy");
        using var submitted = await streamy.PostAsync("/v1/jobs", Body());
        var job = (await submitted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        // The job's stream and the live feed count together: 2 for this tenant.
        using var jobStream = await streamy.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{job}/stream"), HttpCompletionOption.ResponseHeadersRead);
        jobStream.StatusCode.ShouldBe(HttpStatusCode.OK);
        var live = await Jobs.Streaming.LiveStream.OpenAsync(streamy);
        try
        {
            foreach (var path in new[] { "/v1/events/stream", $"/v1/jobs/{job}/stream" })
            {
                using var refused = await streamy.GetAsync(path, HttpCompletionOption.ResponseHeadersRead);
                refused.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests, path);
                refused.Headers.RetryAfter!.Delta.ShouldBe(TimeSpan.FromSeconds(5));
                refused.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
                (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString()!.ShouldContain("holds 2 event streams open");
            }

            // Another tenant's places are its own (3 for roomy).
            var others = new List<Jobs.Streaming.LiveStream>();
            for (var i = 0; i < 3; i++)
            {
                others.Add(await Jobs.Streaming.LiveStream.OpenAsync(roomy));
            }

            using (var fourth = await roomy.GetAsync("/v1/events/stream", HttpCompletionOption.ResponseHeadersRead))
            {
                fourth.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
            }

            foreach (var other in others)
            {
                await other.DisposeAsync();
            }
        }
        finally
        {
            await live.DisposeAsync();
        }

        // The closed live stream gave its place back.
        await Retry.Until("a place for a new stream once one closed", async () =>
        {
            using var again = await streamy.GetAsync("/v1/events/stream", HttpCompletionOption.ResponseHeadersRead);
            return again.StatusCode;
        }, status => status == HttpStatusCode.OK, TimeSpan.FromSeconds(20));
    }

    private static StringContent Bulk(int jobs) =>
        new($$"""{"jobs":[{{string.Join(",", Enumerable.Repeat(Scenarios.MlpJob([1, 2, 3, 4]), jobs))}}]}""", Encoding.UTF8, "application/json");

    private static StringContent Body() => new(Scenarios.MlpJob([1, 2, 3, 4]), Encoding.UTF8, "application/json");
}
