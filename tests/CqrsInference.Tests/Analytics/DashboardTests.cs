using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Playwright;

namespace CqrsInference.Tests.Analytics;

/// <summary>The whole pipeline served over real HTTP (Kestrel on loopback), for a real browser.</summary>
public sealed class DashboardTests(PipelineServedOverHttp pipeline) : IClassFixture<PipelineServedOverHttp>
{
    [Fact]
    public async Task Dashboard_renders_charts_with_data_from_a_run_in_headless_chromium()
    {
        var client = pipeline.Operator;
        var jobs = new List<Guid>();
        for (var i = 0; i < 12; i++)
        {
            jobs.Add((await client.SubmitAsync(Scenarios.MlpJob([i, 1, 2, 3]))).Id);
        }

        foreach (var id in jobs)
        {
            await client.WaitForStatusAsync(id, "succeeded");
        }

        var now = DateTimeOffset.UtcNow;
        await Retry.Until("the usage roll-up to count the run",
            async () => await client.GetFromJsonAsync<JsonElement>($"/v1/analytics/usage?from={Uri.EscapeDataString(now.AddHours(-1).ToString("O"))}&to={Uri.EscapeDataString(now.AddHours(1).ToString("O"))}&groupBy=model,device"),
            rows => rows.EnumerateArray().Any(r => r.GetProperty("device").GetString() == "cpu" && r.GetProperty("succeeded").GetInt64() >= 12));

        await Retry.Until("a heartbeat to count utilization",
            async () => await client.GetFromJsonAsync<JsonElement>($"/v1/analytics/utilization?from={Uri.EscapeDataString(now.AddHours(-1).ToString("O"))}&to={Uri.EscapeDataString(now.AddHours(1).ToString("O"))}"),
            rows => rows.GetArrayLength() > 0);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 1000 } });
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);

        // The page reads analytics with the key its user typed (kept in localStorage).
        await page.AddInitScriptAsync($"localStorage.setItem('cqrsi-key', '{TestEnvironment.OperatorKey}')");
        await page.GotoAsync($"{pipeline.BaseUrl}/dashboard");
        await page.WaitForFunctionAsync("() => window.dashboardState && window.dashboardState.refreshes > 0", null, new PageWaitForFunctionOptions { Timeout = 20_000 });

        var state = await page.EvaluateAsync<JsonElement>("() => window.dashboardState");
        state.GetProperty("errors").GetArrayLength().ShouldBe(0, state.ToString());
        var points = state.GetProperty("points");
        points.GetProperty("throughput").GetInt32().ShouldBeGreaterThan(0);
        points.GetProperty("queues").GetInt32().ShouldBeGreaterThan(0);
        points.GetProperty("utilization").GetInt32().ShouldBeGreaterThan(0);
        points.GetProperty("cost").GetInt32().ShouldBeGreaterThan(0);
        (await page.EvaluateAsync<int>("() => Object.keys(Chart.instances).length")).ShouldBe(4);
        var throughput = await page.EvaluateAsync<double>(
            "() => Object.values(Chart.instances).find(c => c.canvas.id === 'throughput').data.datasets.flatMap(d => d.data).reduce((a, b) => a + b, 0)");
        throughput.ShouldBeGreaterThanOrEqualTo(12);
        (await page.Locator("#processors tbody tr").CountAsync()).ShouldBeGreaterThan(0);
        errors.ShouldBeEmpty();

        var screenshots = Path.Combine(TestEnvironment.RepositoryRoot, ".data", "test-results");
        Directory.CreateDirectory(screenshots);
        var path = Path.Combine(screenshots, "dashboard.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        new FileInfo(path).Length.ShouldBeGreaterThan(10_000);
    }

    [Fact]
    public async Task Names_that_reached_the_core_from_elsewhere_are_shown_as_text_never_run_as_markup()
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);
        const string hostile = "<img src=x onerror=\"window.pwned=1\">";
        var processors = JsonSerializer.Serialize(new[]
        {
            new { worker = hostile, region = "<b>east</b>", device = "cpu", slots = 1, online = false, offlineReason = "<script>window.pwned=2</script>", lastSeen = DateTimeOffset.UtcNow },
        });
        await page.RouteAsync("**/v1/analytics/processors", route => route.FulfillAsync(new RouteFulfillOptions { ContentType = "application/json", Body = processors }));

        // The live stream's processors take the same way into the table (then the stream ends, and the page polls the route above).
        await page.RouteAsync("**/v1/events/stream", route => route.FulfillAsync(new RouteFulfillOptions
        {
            ContentType = "text/event-stream",
            Body = $"event: hello\ndata: {{\"resumed\":false}}\n\nevent: processors\ndata: {processors}\n\n",
        }));
        await page.AddInitScriptAsync($"localStorage.setItem('cqrsi-key', '{TestEnvironment.OperatorKey}')");
        await page.GotoAsync($"{pipeline.BaseUrl}/dashboard");
        await page.WaitForFunctionAsync("() => window.dashboardState && window.dashboardState.refreshes > 0", null, new PageWaitForFunctionOptions { Timeout = 20_000 });

        (await page.Locator("#processors tbody td").First.TextContentAsync()).ShouldBe(hostile);
        (await page.Locator("#processors tbody img, #processors tbody b, #processors tbody script").CountAsync()).ShouldBe(0);
        (await page.EvaluateAsync<bool>("() => window.pwned === undefined")).ShouldBeTrue();
        errors.ShouldBeEmpty();
    }

    [Fact]
    public async Task While_the_live_stream_is_up_the_page_does_not_poll_and_a_new_job_reaches_it_through_the_stream()
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 1000 } });
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);
        var requests = new System.Collections.Concurrent.ConcurrentQueue<string>();
        page.Request += (_, request) => requests.Enqueue(new Uri(request.Url).PathAndQuery);
        await page.AddInitScriptAsync($"localStorage.setItem('cqrsi-key', '{TestEnvironment.OperatorKey}')");
        await page.GotoAsync($"{pipeline.BaseUrl}/dashboard");
        await page.WaitForFunctionAsync("() => window.dashboardState.mode === 'live' && window.dashboardState.refreshes > 0", null, new PageWaitForFunctionOptions { Timeout = 20_000 });

        // Longer than two of the old 5 s polls, with nothing happening: the page asks the API nothing
        // (the stream keeps pushing the processors' heartbeats meanwhile). Absence takes watching a while.
        requests.Clear();
        await page.WaitForTimeoutAsync(11_000);
        requests.Where(p => p.StartsWith("/v1/", StringComparison.Ordinal) && !p.StartsWith("/v1/events/stream", StringComparison.Ordinal)).ShouldBeEmpty();
        (await page.EvaluateAsync<string>("() => window.dashboardState.mode")).ShouldBe("live");
        (await page.EvaluateAsync<int>("() => window.dashboardState.live.events")).ShouldBeGreaterThan(1);

        // A job submitted now: the stream names it, the page reads it into the table and follows it to its ending.
        var job = await pipeline.Operator.SubmitAsync(Scenarios.MlpJob([5, 6, 7, 8]));
        await page.Locator($"#jobs tbody tr[data-job='{job.Id}'][data-status='succeeded']").WaitForAsync(new() { Timeout = 20_000 });
        (await page.EvaluateAsync<string>("() => window.dashboardState.mode")).ShouldBe("live");
        var pageErrors = await page.EvaluateAsync<JsonElement>("() => window.dashboardState.errors");
        pageErrors.GetArrayLength().ShouldBe(0, pageErrors.ToString());
        errors.ShouldBeEmpty();
    }

    [Fact]
    public async Task Without_the_live_stream_the_page_polls_every_5_s()
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        await page.RouteAsync("**/v1/events/stream", route => route.AbortAsync());
        await page.AddInitScriptAsync($"localStorage.setItem('cqrsi-key', '{TestEnvironment.OperatorKey}')");
        await page.GotoAsync($"{pipeline.BaseUrl}/dashboard");

        await page.WaitForFunctionAsync("() => window.dashboardState.mode === 'polling' && window.dashboardState.refreshes >= 2", null, new PageWaitForFunctionOptions { Timeout = 20_000 });
        (await page.Locator("#status").TextContentAsync())!.ShouldContain("refreshes every 5 s");
    }

    [Fact]
    public async Task A_key_without_the_operator_role_gets_the_charts_it_may_read_and_a_note_for_the_others()
    {
        using var created = await pipeline.Operator.PostAsJsonAsync("/v1/admin/keys", new { tenant = "dash-analyst", name = "analyst", roles = new[] { "analyst", "read" } });
        var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString();
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        await page.AddInitScriptAsync($"localStorage.setItem('cqrsi-key', '{key}')");
        await page.GotoAsync($"{pipeline.BaseUrl}/dashboard");

        // Utilization and processors are the operator's (403): the page drew the rest all the same.
        await page.WaitForFunctionAsync("() => window.dashboardState && window.dashboardState.refreshes > 0", null, new PageWaitForFunctionOptions { Timeout = 20_000 });
        var state = await page.EvaluateAsync<JsonElement>("() => window.dashboardState");
        state.GetProperty("errors").GetArrayLength().ShouldBe(0, state.ToString());
        state.GetProperty("notForThisKey").EnumerateArray().Select(p => p.GetString()).ShouldBe(["/v1/analytics/utilization", "/v1/analytics/processors"]);
        state.GetProperty("points").TryGetProperty("throughput", out _).ShouldBeTrue();
        (await page.Locator("#status").TextContentAsync())!.ShouldContain("not for this key's roles: utilization, processors");
    }

    internal static Task<IBrowser> LaunchAsync(IPlaywright playwright) => playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
    {
        ExecutablePath = "/usr/bin/chromium",
        Headless = true,
        Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
    });
}
