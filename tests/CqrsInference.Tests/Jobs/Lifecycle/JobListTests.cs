using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Lifecycle;

/// <summary><c>GET /v1/jobs</c> in pages: <c>limit</c>, <c>after</c> and <c>nextCursor</c>, as the audit feed pages.</summary>
public sealed class JobListTests(PipelineWithoutProcessors pipeline) : IClassFixture<PipelineWithoutProcessors>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task Pages_follow_each_other_newest_first_without_overlap_or_gap_even_through_jobs_that_share_a_submission_time()
    {
        // A bulk submit's jobs share one submission time: the id breaks the tie.
        var bulk = string.Join(",", Enumerable.Range(0, 5).Select(i => Scenarios.MlpJob([i, 0, 0, 0])));
        using var bulkResponse = await _client.PostAsync("/v1/jobs:bulk", new StringContent($"{{\"jobs\":[{bulk}]}}", Encoding.UTF8, "application/json"));
        bulkResponse.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        for (var i = 0; i < 3; i++)
        {
            (await _client.SubmitAsync(Scenarios.MlpJob([0, i, 0, 0]))).Status.ShouldBe(HttpStatusCode.Accepted);
        }

        var all = await Retry.Until("the 8 jobs to be recorded", () => PageAsync("limit=1000"), p => p.Jobs.Count == 8);
        all.Next.ShouldBeNull();
        all.Jobs.Select(j => j.SubmittedAt).ShouldBeInOrder(SortDirection.Descending);

        var (byThree, sizes) = await AllPagesAsync(limit: 3, between: () => _client.SubmitAsync(Scenarios.MlpJob([9, 9, 9, 9])));
        byThree.Select(j => j.Id).ShouldBe(all.Jobs.Select(j => j.Id));
        sizes.ShouldBe([3, 3, 2]);

        // From a cursor past the newest job (the one submitted meanwhile), with a filter; a last page
        // that is exactly full says so: no cursor to an empty page.
        await Retry.Until("the 9th job to be recorded", () => PageAsync("limit=1000"), p => p.Jobs.Count == 9);
        var newest = await PageAsync("limit=1&status=queued");
        var (byFour, fours) = await AllPagesAsync(limit: 4, from: newest.Next, filter: "&status=queued");
        byFour.Select(j => j.Id).ShouldBe(all.Jobs.Select(j => j.Id));
        fours.ShouldBe([4, 4]);
    }

    [Theory]
    [InlineData("after=not-a-cursor")]
    [InlineData("after=MTIzNDU")]
    [InlineData("after=OTk5OTk5OTk5OTk5OTk5OTk5OTkuMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA")]
    public async Task A_cursor_that_no_page_gave_is_refused(string query)
    {
        using var response = await _client.GetAsync($"/v1/jobs?{query}");

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").GetProperty("after")[0].GetString()!.ShouldContain("nextCursor");
    }

    private sealed record Listed(Guid Id, DateTimeOffset SubmittedAt);

    /// <summary>
    /// Every page from the start (or from cursor <paramref name="from"/>), <paramref name="limit"/> at a
    /// time; <paramref name="between"/> runs after the first page (a job submitted meanwhile belongs to
    /// a new list, not to a later page).
    /// </summary>
    private async Task<(List<Listed> Jobs, List<int> Sizes)> AllPagesAsync(int limit, string? from = null, Func<Task>? between = null, string filter = "")
    {
        var (jobs, sizes) = (new List<Listed>(), new List<int>());
        var next = from;
        do
        {
            var page = await PageAsync($"limit={limit}{filter}" + (next is null ? "" : $"&after={next}"));
            jobs.AddRange(page.Jobs);
            sizes.Add(page.Jobs.Count);
            next = page.Next;
            if (between is not null)
            {
                await between();
                between = null;
            }
        }
        while (next is not null);
        return (jobs, sizes);
    }

    private async Task<(List<Listed> Jobs, string? Next)> PageAsync(string query)
    {
        var body = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs?{query}");
        var jobs = body.GetProperty("jobs").EnumerateArray().Select(j => new Listed(j.GetProperty("id").GetGuid(), j.GetProperty("submittedAt").GetDateTimeOffset())).ToList();
        var next = body.GetProperty("nextCursor");
        return (jobs, next.ValueKind == JsonValueKind.Null ? null : next.GetString());
    }
}
