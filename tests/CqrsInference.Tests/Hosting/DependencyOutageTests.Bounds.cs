using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Hosting;

/// <summary>Every request the API answers from PostgreSQL is bounded while it hangs (Api:Timeouts:Request, 10 s).</summary>
public sealed partial class DependencyOutageTests
{
    [Fact]
    public async Task A_hung_postgres_holds_no_list_admin_analytics_or_export_request_past_the_request_bound()
    {
        using var operatorClient = Client(TestEnvironment.OperatorKey);
        using var created = await operatorClient.PostAsJsonAsync("/v1/admin/keys",
            new { tenant = "bounded", name = "all", roles = new[] { "submit", "read", "analyst", "auditor", "admin" } });
        using var tenant = Client((await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString());
        (await tenant.GetAsync("/v1/batches")).StatusCode.ShouldBe(HttpStatusCode.OK);
        using var batchFile = new StringContent(Scenarios.MlpJob([1, 2, 3, 4]) + "\n", System.Text.Encoding.UTF8, "application/jsonl");
        using var submitted = await tenant.PostAsync("/v1/batches", batchFile);
        submitted.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var batch = (await submitted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("batch").GetProperty("id").GetGuid();

        // Each waited for the driver's timeouts before (38-45 s in a probe), some until the server came back.
        var requests = new (HttpClient Client, HttpMethod Method, string Path)[]
        {
            (tenant, HttpMethod.Get, "/v1/batches"),
            (tenant, HttpMethod.Get, $"/v1/batches/{batch}"),
            (tenant, HttpMethod.Get, $"/v1/batches/{batch}/results"),
            (tenant, HttpMethod.Get, "/v1/admin/keys"),
            (operatorClient, HttpMethod.Post, "/v1/admin/keys"),
            (operatorClient, HttpMethod.Get, "/v1/admin/backtests"),
            (operatorClient, HttpMethod.Get, "/v1/analytics/processors"),
            (operatorClient, HttpMethod.Get, "/v1/analytics/shadow"),
            (tenant, HttpMethod.Get, "/v1/audit/events"),
        };
        await _postgres.FreezeAsync();
        try
        {
            var answers = await Task.WhenAll(requests.Select(async r =>
            {
                using var request = new HttpRequestMessage(r.Method, r.Path);
                if (r.Method == HttpMethod.Post)
                {
                    request.Content = JsonContent.Create(new { tenant = "bounded", name = "during", roles = new[] { "read" } });
                }
                else if (r.Path == "/v1/audit/events")
                {
                    request.Headers.Accept.ParseAdd("application/x-ndjson");
                }

                var took = System.Diagnostics.Stopwatch.StartNew();
                using var response = await r.Client.SendAsync(request);
                return (r.Path, r.Method, response.StatusCode, RetryAfter: response.Headers.RetryAfter?.Delta, response.Content.Headers.ContentType?.MediaType, took.Elapsed);
            }));

            var all = string.Join("; ", answers.Select(a => $"{a.Method} {a.Path}: {(int)a.StatusCode} in {a.Elapsed.TotalSeconds:0.0} s"));
            foreach (var answer in answers)
            {
                var what = $"{answer.Method} {answer.Path} (all: {all})";
                answer.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable, what);
                answer.RetryAfter.ShouldBe(TimeSpan.FromSeconds(2), what);
                answer.MediaType.ShouldBe("application/problem+json", what);

                // The bound (10 s), then at most a command's timeout (5 s) for a command it cancelled, and a loaded machine.
                answer.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(20), what);
            }
        }
        finally
        {
            await _postgres.ThawAsync();
        }

        await Retry.Until("the lists to answer again", () => tenant.GetAsync("/v1/batches"), r => r.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(60));
    }
}
