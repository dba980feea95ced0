using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Playwright;

namespace CqrsInference.Tests.Analytics;

/// <summary>The dashboard's jobs and batches: a real browser cancels a queued job and retries it, and follows a batch's progress.</summary>
public sealed class DashboardJobControlTests(PipelineServedOverHttpWithFaults pipeline) : IClassFixture<PipelineServedOverHttpWithFaults>
{
    [Fact]
    public async Task An_operator_cancels_a_queued_job_retries_it_and_sees_a_batch_finish_in_headless_chromium()
    {
        var client = pipeline.Operator;
        var queued = await client.SubmitAsync(Scenarios.MlpJob([9, 9, 9, 9])[..^1] + $",\"region\":\"{PipelineServedOverHttpWithFaults.UnservedRegion}\"}}");
        var lines = string.Join('\n', Enumerable.Range(0, 3).Select(i => Scenarios.MlpJob([i, 1, 2, 3])[..^1] + $",\"customId\":\"line-{i}\"}}"));
        using var submitted = await client.PostAsync("/v1/batches", new StringContent(lines, Encoding.UTF8, "application/jsonl"));
        submitted.StatusCode.ShouldBe(HttpStatusCode.Accepted, await submitted.Content.ReadAsStringAsync());
        var batch = (await submitted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("batch").GetProperty("id").GetString();
        await Retry.Until("the batch to complete", () => client.GetFromJsonAsync<JsonElement>($"/v1/batches/{batch}"),
            b => b.GetProperty("status").GetString() == "completed");

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await DashboardTests.LaunchAsync(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 1400 } });
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);
        await page.AddInitScriptAsync($"localStorage.setItem('cqrsi-key', '{TestEnvironment.OperatorKey}')");
        await page.GotoAsync($"{pipeline.BaseUrl}/dashboard");

        var row = page.Locator($"#jobs tbody tr[data-job='{queued.Id}']");
        await row.Locator("button", new() { HasText = "cancel" }).ClickAsync(new() { Timeout = 20_000 });
        await client.WaitForStatusAsync(queued.Id, "cancelled");
        await page.Locator($"#jobs tbody tr[data-job='{queued.Id}'][data-status='cancelled'] button", new() { HasText = "retry" }).ClickAsync(new() { Timeout = 20_000 });
        var retried = await Retry.Until("the retried job to be queued again", () => client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{queued.Id}"),
            j => j.GetProperty("status").GetString() == "queued");
        retried.GetProperty("series").GetInt32().ShouldBe(2);
        var actions = await page.EvaluateAsync<JsonElement>("() => window.dashboardState.actions.map(a => a.status)");
        actions.EnumerateArray().Select(a => a.GetInt32()).ShouldBe([200, 202]);

        var batchRow = page.Locator($"#batches tbody tr[data-batch='{batch}']");
        await batchRow.WaitForAsync(new() { Timeout = 20_000 });
        (await batchRow.Locator("td").Nth(1).TextContentAsync()).ShouldBe("completed");
        (await batchRow.Locator("progress").GetAttributeAsync("value")).ShouldBe("3");

        // The tenant filter: the operator lists a tenant by name, and the page says so when it has none.
        await page.FillAsync("#job-tenant", "nobody-here");
        await page.DispatchEventAsync("#job-tenant", "change");
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#jobs tbody tr').length === 0", null, new() { Timeout = 20_000 });
        var pageErrors = await page.EvaluateAsync<JsonElement>("() => window.dashboardState.errors");
        pageErrors.GetArrayLength().ShouldBe(0, pageErrors.ToString());
        errors.ShouldBeEmpty();
    }

    [Fact]
    public async Task Another_tenants_jobs_are_listed_only_for_the_operator_and_the_operator_acts_on_them()
    {
        using var a = await ClientAsync("dash-a", "submit", "read");
        var job = await a.SubmitAsync(Scenarios.MlpJob([1, 1, 1, 1])[..^1] + $",\"region\":\"{PipelineServedOverHttpWithFaults.UnservedRegion}\"}}");

        (await a.GetAsync("/v1/jobs?tenant=dash-b")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        await Retry.Until("the job in its own tenant's list", () => a.GetFromJsonAsync<JsonElement>("/v1/jobs?tenant=dash-a"), page => page.GetProperty("jobs").GetArrayLength() == 1);
        using var b = await ClientAsync("dash-b", "submit", "read");
        (await b.GetAsync($"/v1/jobs/{job.Id}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await b.DeleteAsync($"/v1/jobs/{job.Id}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);

        var listed = await Retry.Until("the job in the operator's list of tenant dash-a", () => pipeline.Operator.GetFromJsonAsync<JsonElement>("/v1/jobs?tenant=dash-a"),
            page => page.GetProperty("jobs").GetArrayLength() == 1);
        listed.GetProperty("jobs")[0].GetProperty("tenant").GetString().ShouldBe("dash-a");
        (await pipeline.Operator.DeleteAsync($"/v1/jobs/{job.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await a.WaitForStatusAsync(job.Id, "cancelled")).GetProperty("tenant").GetString().ShouldBe("dash-a");
    }

    private Task<HttpClient> ClientAsync(string tenant, params string[] roles) => pipeline.TenantClientAsync(tenant, roles);
}
