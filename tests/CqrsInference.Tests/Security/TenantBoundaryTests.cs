using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Security;

/// <summary>
/// What a tenant's own administrator and analyst cannot do to or see of another tenant: the
/// difference between administering one tenant and running the platform.
/// </summary>
public sealed class TenantBoundaryTests(PipelineRequiringKeys pipeline) : IClassFixture<PipelineRequiringKeys>
{
    [Fact]
    public async Task A_tenants_admin_cannot_create_list_or_read_the_webhook_key_of_another_tenant_or_grant_operator()
    {
        using var alfaAdmin = pipeline.ClientWith(await pipeline.CreateKeyAsync("alfa-b", "admin"));
        var bravoKey = await pipeline.CreateKeyAsync("bravo-b", "submit", "read");

        (await alfaAdmin.PostAsJsonAsync("/v1/admin/keys", new { tenant = "bravo-b", name = "takeover", roles = new[] { "admin" } })).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await alfaAdmin.GetAsync("/v1/admin/keys?tenant=bravo-b")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await alfaAdmin.GetAsync("/v1/admin/webhook-key?tenant=bravo-b")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        var operatorGrant = await alfaAdmin.PostAsJsonAsync("/v1/admin/keys", new { tenant = "alfa-b", name = "escalate", roles = new[] { "operator" } });
        ((int)operatorGrant.StatusCode).ShouldBeOneOf(403, 422);

        using var operatorClient = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        var bravoKeyId = (await operatorClient.GetFromJsonAsync<JsonElement>("/v1/admin/keys?tenant=bravo-b")).EnumerateArray().Single().GetProperty("id").GetString();
        (await alfaAdmin.DeleteAsync($"/v1/admin/keys/{bravoKeyId}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);

        // Nothing of bravo's changed: one key, still working.
        (await operatorClient.GetFromJsonAsync<JsonElement>("/v1/admin/keys?tenant=bravo-b")).GetArrayLength().ShouldBe(1);
        using var bravo = pipeline.ClientWith(bravoKey);
        (await bravo.GetAsync("/v1/jobs")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // Its own tenant, it administers.
        (await alfaAdmin.PostAsJsonAsync("/v1/admin/keys", new { name = "ci", roles = new[] { "submit" } })).StatusCode.ShouldBe(HttpStatusCode.Created);
    }

    [Fact]
    public async Task Another_tenant_finds_no_batch_of_alfas_and_the_platform_operator_reads_lists_and_cancels_it()
    {
        using var alfa = pipeline.ClientWith(await pipeline.CreateKeyAsync("alfa-c", "submit", "read"));
        using var bravo = pipeline.ClientWith(await pipeline.CreateKeyAsync("bravo-c", "submit", "read"));
        using var operatorClient = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        var batch = await Batches.BatchScenarios.SubmitBatchAsync(alfa, Batches.BatchScenarios.File([Batches.BatchScenarios.Line(1), Batches.BatchScenarios.Line(2)]));
        batch.Status.ShouldBe(HttpStatusCode.Accepted);

        foreach (var path in new[] { $"/v1/batches/{batch.Id}", $"/v1/batches/{batch.Id}/results", $"/v1/batches/{batch.Id}/errors" })
        {
            (await bravo.GetAsync(path)).StatusCode.ShouldBe(HttpStatusCode.NotFound, path);
            (await operatorClient.GetAsync(path)).StatusCode.ShouldBe(HttpStatusCode.OK, path);
        }

        (await bravo.DeleteAsync($"/v1/batches/{batch.Id}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await bravo.GetAsync("/v1/batches?tenant=alfa-c")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await bravo.GetFromJsonAsync<JsonElement>("/v1/batches")).GetProperty("batches").GetArrayLength().ShouldBe(0);

        var listed = await operatorClient.GetFromJsonAsync<JsonElement>("/v1/batches?tenant=alfa-c");
        listed.GetProperty("batches").EnumerateArray().Select(b => b.GetProperty("id").GetGuid()).ShouldBe([batch.Id]);
        using var cancel = await operatorClient.DeleteAsync($"/v1/batches/{batch.Id}");
        ((int)cancel.StatusCode).ShouldBeOneOf(200, 409); // 409 once its two lines have run
    }

    [Fact]
    public async Task Another_tenants_fresh_job_takes_as_long_to_be_refused_as_an_id_of_no_job()
    {
        using var alfa = pipeline.ClientWith(await pipeline.CreateKeyAsync("alfa-t", "submit", "read"));
        using var bravo = pipeline.ClientWith(await pipeline.CreateKeyAsync("bravo-t", "submit", "read"));
        var job = await alfa.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        job.Status.ShouldBe(HttpStatusCode.Accepted);

        // A fresh id of no job waits (up to a second) for a job not yet recorded; another tenant's
        // job must read the same, else the quick 404 says the id exists.
        foreach (var path in new[] { $"/v1/jobs/{job.Id}", $"/v1/jobs/{job.Id}/events" })
        {
            var started = System.Diagnostics.Stopwatch.StartNew();
            using var answer = await bravo.GetAsync(path);

            answer.StatusCode.ShouldBe(HttpStatusCode.NotFound, path);
            started.Elapsed.ShouldBeGreaterThan(TimeSpan.FromMilliseconds(900), path);
        }

        (await alfa.GetJobAsync(job.Id)).GetProperty("id").GetGuid().ShouldBe(job.Id);
    }
}

/// <summary>Without processors jobs stay waiting, so what each caller counts in the queues is exact.</summary>
public sealed class QueueVisibilityTests(PipelineWithoutProcessors pipeline) : IClassFixture<PipelineWithoutProcessors>
{
    [Fact]
    public async Task An_analyst_counts_its_own_tenants_queues_only_and_sees_none_of_the_platforms_processors_utilization_or_lag()
    {
        using var alfa = await ClientAsync("alfa-q", "submit", "read");
        using var bravo = await ClientAsync("bravo-q", "submit", "read", "analyst");
        for (var i = 0; i < 3; i++)
        {
            (await alfa.SubmitAsync(Scenarios.MlpJob([1, 1, 1, i]))).Status.ShouldBe(HttpStatusCode.Accepted);
        }

        (await bravo.SubmitAsync(Scenarios.MlpJob([2, 2, 2, 2]))).Status.ShouldBe(HttpStatusCode.Accepted);

        await Retry.Until("the operator to count every tenant's waiting jobs", () => pipeline.Operator.GetFromJsonAsync<JsonElement>("/v1/analytics/queues"),
            queues => Waiting(queues) >= 4);
        var seen = await bravo.GetFromJsonAsync<JsonElement>("/v1/analytics/queues");
        Waiting(seen).ShouldBe(1);
        seen.EnumerateArray().Max(q => q.GetProperty("tenantsWaiting").GetInt32()).ShouldBe(1);

        foreach (var path in new[] { "/v1/analytics/processors", "/v1/analytics/utilization", "/v1/analytics/lag", "/metrics", "/v1/audit/verify" })
        {
            (await bravo.GetAsync(path)).StatusCode.ShouldBe(HttpStatusCode.Forbidden, path);
        }

        (await bravo.PostAsync("/v1/admin/replay", null)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_caller_without_a_key_may_submit_and_read_but_nothing_else()
    {
        var job = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([3, 3, 3, 3]));
        job.Status.ShouldBe(HttpStatusCode.Accepted);
        (await pipeline.Client.GetAsync($"/v1/jobs/{job.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        foreach (var path in new[] { "/v1/analytics/usage", "/v1/analytics/queues", "/v1/analytics/processors", "/v1/audit/events", "/v1/audit/verify", "/v1/admin/keys", "/metrics" })
        {
            ((int)(await pipeline.Client.GetAsync(path)).StatusCode).ShouldBeOneOf([401, 403], path);
        }

        ((int)(await pipeline.Client.PostAsync("/v1/admin/replay", null)).StatusCode).ShouldBeOneOf(401, 403);
        ((int)(await pipeline.Client.PostAsJsonAsync("/v1/admin/keys", new { tenant = "default", name = "x", roles = new[] { "admin" } })).StatusCode).ShouldBeOneOf(401, 403);
    }

    private static long Waiting(JsonElement queues) =>
        queues.EnumerateArray().Where(q => q.GetProperty("model").GetString() == "mlp-test").Sum(q => q.GetProperty("waiting").GetInt64());

    private Task<HttpClient> ClientAsync(string tenant, params string[] roles) => pipeline.TenantClientAsync(tenant, roles);
}
