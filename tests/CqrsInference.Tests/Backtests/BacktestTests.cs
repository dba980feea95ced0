using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using CqrsInference.Tests.Processors.Runtime;

namespace CqrsInference.Tests.Backtests;

/// <summary>Backtests of recorded OCR jobs (POST/GET /v1/admin/backtests), through the whole pipeline.</summary>
public sealed class BacktestTests(PipelineWithOcrCandidate pipeline) : IClassFixture<PipelineWithOcrCandidate>
{
    /// <summary>The issue asks for 500; CQRSI_BACKTEST_JOBS=500 runs that (the default keeps the suite's time on a 2-core machine).</summary>
    private static readonly int Jobs = int.TryParse(Environment.GetEnvironmentVariable("CQRSI_BACKTEST_JOBS"), out var jobs) ? jobs : 40;

    private static readonly string[] Lines =
    [
        "Invoice 4711 paid", "Order 2024 shipped", "Total 37 EUR", "Hello world", "Room 12 booked",
        "Account 9981", "Delivery at 17:30", "Ticket 555", "Page 3 of 8", "Call 0800 123",
    ];

    [Fact]
    public async Task Backtest_is_all_identical_on_the_same_version_and_finds_exactly_the_known_differences_on_a_changed_candidate()
    {
        var from = DateTimeOffset.UtcNow.AddSeconds(-1);
        var tenant = await pipeline.TenantClientAsync("backtest-ocr", "submit", "read");
        var recorded = await RecordOcrJobsAsync(tenant, Jobs);
        var to = DateTimeOffset.UtcNow.AddSeconds(1);
        var withSeven = recorded.Count(text => text.Contains('7'));
        withSeven.ShouldBeGreaterThan(0);

        var same = await RunBacktestAsync("4", from, to, ["backtest-ocr"]);
        same.GetProperty("compared").GetInt32().ShouldBe(Jobs);
        same.GetProperty("identical").GetInt32().ShouldBe(Jobs);
        same.GetProperty("identicalPercent").GetDouble().ShouldBe(100);
        same.GetProperty("skipped").EnumerateObject().ShouldBeEmpty();
        same.GetProperty("recorded").GetProperty("runP50Ms").GetDouble().ShouldBeGreaterThan(0);
        same.GetProperty("candidate").GetProperty("deviceSeconds").GetDouble().ShouldBeGreaterThan(0);

        var changed = await RunBacktestAsync(PipelineWithOcrCandidate.Candidate, from, to, ["backtest-ocr"]);
        changed.GetProperty("compared").GetInt32().ShouldBe(Jobs);
        changed.GetProperty("different").GetInt32().ShouldBe(withSeven);
        var example = changed.GetProperty("examples")[0];
        example.GetProperty("output").GetString().ShouldBe("text");
        // The text as JSON writes it: the candidate read the 7 as ⑦ (\u2466).
        example.GetProperty("difference").GetString()!.ShouldContain("\\u2466");
        Console.WriteLine($"Backtest of {Jobs} OCR jobs: same version {same.GetProperty("identicalPercent")}% identical; candidate {changed.GetProperty("different")} different of {withSeven} expected");
    }

    [Fact]
    public async Task Backtest_takes_at_most_its_limit_and_only_the_tenants_named()
    {
        var from = DateTimeOffset.UtcNow.AddSeconds(-1);
        await RecordOcrJobsAsync(await pipeline.TenantClientAsync("backtest-limit", "submit", "read"), 4);
        await RecordOcrJobsAsync(await pipeline.TenantClientAsync("backtest-other", "submit", "read"), 2);
        var to = DateTimeOffset.UtcNow.AddSeconds(1);

        var limited = await RunBacktestAsync("4", from, to, ["backtest-limit"], limit: 3);
        limited.GetProperty("compared").GetInt32().ShouldBe(3, limited.ToString());
        var others = await RunBacktestAsync("4", from, to, ["backtest-other"]);
        others.GetProperty("compared").GetInt32().ShouldBe(2);

        // The configured operator key is named as such in the record, not "development".
        others.GetProperty("requestedBy").GetString().ShouldBe("operator");
    }

    [Fact]
    public async Task Backtest_compares_every_job_of_a_bulk_submit_though_all_share_one_instant()
    {
        // One bulk submit: every job has the same submittedAt, a tie larger than a chunk and its margin.
        const int Tied = 300;
        var from = DateTimeOffset.UtcNow.AddSeconds(-1);
        var tenant = await pipeline.TenantClientAsync("backtest-ties", "submit", "read");
        var body = $$"""{"jobs":[{{string.Join(",", Enumerable.Range(0, Tied).Select(i => Scenarios.MlpJob([i, 1, 2, 3])))}}]}""";
        using (var response = await tenant.PostAsync("/v1/jobs:bulk", new StringContent(body, System.Text.Encoding.UTF8, "application/json")))
        {
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
            foreach (var job in (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("jobs").EnumerateArray())
            {
                await tenant.WaitForStatusAsync(job.GetProperty("id").GetGuid(), "succeeded");
            }
        }

        var report = await RunBacktestAsync(pipeline.Operator, "mlp-test", "1", from, DateTimeOffset.UtcNow.AddSeconds(1), ["backtest-ties"]);

        report.GetProperty("compared").GetInt32().ShouldBe(Tied, report.ToString());
        report.GetProperty("identical").GetInt32().ShouldBe(Tied);
    }

    [Fact]
    public async Task Start_refuses_each_bad_field_by_name()
    {
        var from = DateTimeOffset.UtcNow.AddHours(-1).ToString("O");
        var to = DateTimeOffset.UtcNow.ToString("O");
        await RefusedAsync(new { model = "no-such-model", candidateVersion = "1", from, to }, "model");
        await RefusedAsync(new { model = "ppocr-rec", candidateVersion = "99", from, to }, "candidateVersion");
        await RefusedAsync(new { model = "ppocr-rec", candidateVersion = "4", from = to, to = from }, "to");
        await RefusedAsync(new { model = "ppocr-rec", candidateVersion = "4", from = "yesterday", to }, "from");
        await RefusedAsync(new { model = "ppocr-rec", candidateVersion = "4", to }, "from");
        await RefusedAsync(new { model = "ppocr-rec", candidateVersion = "4", from, to, limit = 0 }, "limit");
        await RefusedAsync(new { model = "ppocr-rec", candidateVersion = "4", from, to, limit = 10_001 }, "limit");
        await RefusedAsync(new { model = "ppocr-rec", candidateVersion = "4", from, to, tenants = new[] { "Not A Tenant!" } }, "tenants");
        await RefusedAsync(new { model = "ppocr-rec", candidateVersion = "4", from, to, tenants = Array.Empty<string>() }, "tenants");
        await RefusedAsync(new { model = "ppocr-rec", candidateVersion = "4", from, to, tenants = new string?[] { null } }, "tenants");
        await RefusedAsync(new { model = "ppocr-rec", candidateVersion = "4", from, to, tenants = new string?[] { "acme", null } }, "tenants");
        using var missing = await pipeline.Operator.GetAsync($"/v1/admin/backtests/{Guid.NewGuid()}");
        missing.StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_start_retried_with_its_idempotency_key_answers_the_backtest_it_started_and_another_request_under_it_is_409()
    {
        var from = DateTimeOffset.UtcNow.AddHours(-1);
        var body = new { model = "ppocr-rec", candidateVersion = "4", from, to = from.AddMinutes(30), tenants = new[] { "keyed-nobody" } };

        // Two at once, then a retry: one backtest.
        var answers = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => StartAsync(body, "bt-key-1")));
        answers.ShouldAllBe(a => a.Status == HttpStatusCode.Accepted);
        answers.Select(a => a.Id).Distinct().ShouldHaveSingleItem();
        var retried = await StartAsync(body, "bt-key-1");
        retried.Id.ShouldBe(answers[0].Id);
        (await pipeline.Operator.GetFromJsonAsync<JsonElement>("/v1/admin/backtests?limit=200")).EnumerateArray()
            .Count(b => b.GetProperty("id").GetGuid() == answers[0].Id).ShouldBe(1);

        (await StartAsync(new { body.model, body.candidateVersion, body.from, body.to, tenants = new[] { "keyed-other" } }, "bt-key-1")).Status
            .ShouldBe(HttpStatusCode.Conflict);
        (await StartAsync(body, "bt-key-2")).Id.ShouldNotBe(answers[0].Id);
    }

    private async Task<(HttpStatusCode Status, Guid? Id)> StartAsync(object body, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/admin/backtests") { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", key);
        using var response = await pipeline.Operator.SendAsync(request);
        return (response.StatusCode, response.StatusCode == HttpStatusCode.Accepted
            ? (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid()
            : null);
    }

    [Fact]
    public async Task Only_the_platform_operator_may_start_or_read_backtests()
    {
        var body = new { model = "ppocr-rec", candidateVersion = "4", from = DateTimeOffset.UtcNow.AddHours(-1), to = DateTimeOffset.UtcNow };
        using var anonymous = await pipeline.Client.PostAsJsonAsync("/v1/admin/backtests", body);
        anonymous.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        var admin = await pipeline.TenantClientAsync("backtest-admin", "admin", "submit", "read");
        using var tenantAdmin = await admin.PostAsJsonAsync("/v1/admin/backtests", body);
        tenantAdmin.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        using var list = await admin.GetAsync("/v1/admin/backtests");
        list.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
    }

    private async Task RefusedAsync(object body, string field)
    {
        using var response = await pipeline.Operator.PostAsJsonAsync("/v1/admin/backtests", body);
        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        problem.GetProperty("errors").TryGetProperty(field, out _).ShouldBeTrue($"{field} in {problem}");
    }

    /// <summary>Starts a backtest and waits for its report.</summary>
    internal static async Task<JsonElement> RunBacktestAsync(HttpClient client, string model, string version, DateTimeOffset from, DateTimeOffset to, string[] tenants, int? limit = null)
    {
        using var started = await client.PostAsJsonAsync("/v1/admin/backtests", new { model, candidateVersion = version, from, to, tenants, limit });
        started.StatusCode.ShouldBe(HttpStatusCode.Accepted, await started.Content.ReadAsStringAsync());
        var location = started.Headers.Location!.ToString();
        var report = await Retry.Until(
            $"backtest {location} to end",
            () => client.GetFromJsonAsync<JsonElement>(location),
            r => r.GetProperty("status").GetString() is "completed" or "failed",
            TimeSpan.FromMinutes(Jobs > 100 ? 20 : 3));
        report.GetProperty("status").GetString().ShouldBe("completed", report.ToString());
        return report;
    }

    private Task<JsonElement> RunBacktestAsync(string version, DateTimeOffset from, DateTimeOffset to, string[] tenants, int? limit = null) =>
        RunBacktestAsync(pipeline.Operator, "ppocr-rec", version, from, to, tenants, limit);

    /// <summary>Submits <paramref name="count"/> OCR jobs of the lines in turn and waits until each succeeded; their recorded texts.</summary>
    internal static async Task<List<string>> RecordOcrJobsAsync(HttpClient client, int count)
    {
        var images = new List<string>();
        foreach (var line in Lines)
        {
            images.Add(Convert.ToBase64String(await RealModelTests.RenderLineAsync(line, crop: false)));
        }

        var texts = new List<string>();
        foreach (var chunk in Enumerable.Range(0, count).Chunk(16))
        {
            var submitted = await Task.WhenAll(chunk.Select(i => client.SubmitAsync(
                $$"""{"model":"ppocr-rec","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["{{images[i % images.Count]}}"]}]}""")));
            submitted.ShouldAllBe(s => s.Status == HttpStatusCode.Accepted);
            foreach (var job in submitted)
            {
                var done = await client.WaitForStatusAsync(job.Id, "succeeded", TimeSpan.FromMinutes(2));
                texts.Add(done.GetProperty("outputs")[0].GetProperty("data")[0].GetString()!);
            }
        }

        return texts;
    }
}
