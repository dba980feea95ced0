using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using Microsoft.Extensions.DependencyInjection;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// PostgreSQL or nats-server stopped under a running pipeline (API, processor and recorders in one
/// host, servers of the test's own): nothing answers 500, what cannot be done answers 503 with
/// Retry-After, every role is still there when the server returns, and every job accepted
/// succeeds.
/// </summary>
public sealed partial class DependencyOutageTests : IAsyncLifetime
{
    private NatsServerProcess _nats = null!;
    private PostgresProcess _postgres = null!;
    private PipelineHost _host = null!;
    private PipelineHost? _standby;

    public async Task InitializeAsync()
    {
        _nats = await NatsServerProcess.StartAsync();
        _postgres = await PostgresProcess.StartAsync();
        _host = new PipelineHost(_nats.Url, TestEnvironment.NewSchema(), "api,processor,projections", new Dictionary<string, string?>
        {
            ["ConnectionStrings:Postgres"] = ConnectionString,
            ["Api:AllowAnonymous"] = "false",

            // Every request asks the store (no few seconds' trust in a fresh confirmation), so that
            // what is tested is what a request does when the store is away or hangs.
            ["Api:KeyCache:FreshFor"] = "00:00:00",
        });
    }

    /// <summary>
    /// The server's, without the test server's short timeouts: as a deployment's connection string
    /// has it (the service's 5 s to connect, the driver's 30 s per command), so that what a hung
    /// server costs a request is what it would cost there.
    /// </summary>
    private string ConnectionString
    {
        get
        {
            var builder = new Npgsql.NpgsqlConnectionStringBuilder(_postgres.ConnectionString);
            builder.Remove("Timeout");
            builder.Remove("Command Timeout");
            return builder.ConnectionString;
        }
    }

    public async Task DisposeAsync()
    {
        if (_standby is not null)
        {
            await _standby.DisposeAsync();
        }

        await _host.DisposeAsync();
        await _postgres.DisposeAsync();
        await _nats.DisposeAsync();
    }

    [Fact]
    public async Task Known_keys_submit_through_an_outage_reads_answer_503_and_every_accepted_job_succeeds_after()
    {
        using var operatorClient = Client(TestEnvironment.OperatorKey);

        // A second projections process (started once the first made the streams) stands by for the recorders' leases.
        _standby = new PipelineHost(_nats.Url, _host.Schema, "projections", new Dictionary<string, string?> { ["ConnectionStrings:Postgres"] = ConnectionString });
        _ = _standby.Server;
        using var created = await operatorClient.PostAsJsonAsync("/v1/admin/keys", new { tenant = "acme", name = "acme app", roles = new[] { "submit", "read" } });
        using var acme = Client((await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString());
        var before = await acme.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        await acme.WaitForStatusAsync(before.Id, "succeeded");

        await _postgres.StopAsync();
        var accepted = new List<Guid>();
        var answers = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            var job = await acme.SubmitAsync(Scenarios.MlpJob([i, 1, 1, 1]), idempotencyKey: i % 2 == 0 ? $"outage-{i}" : null);
            answers.Add($"submit {(int)job.Status}");
            if (job.Status == HttpStatusCode.Accepted)
            {
                accepted.Add(job.Id);
            }
        }

        // A client retrying with its key (as a 503 tells it to) gets the same job; another body is still refused.
        var retried = await acme.SubmitAsync(Scenarios.MlpJob([0, 1, 1, 1]), idempotencyKey: "outage-0");
        retried.Status.ShouldBe(HttpStatusCode.Accepted);
        retried.Id.ShouldBe(accepted[0]);
        (await acme.SubmitAsync(Scenarios.MlpJob([9, 9, 9, 9]), idempotencyKey: "outage-0")).Status.ShouldBe(HttpStatusCode.Conflict);

        // A job this API just accepted reads as accepted (from its memory); the store's history does not.
        (await acme.GetJobAsync(accepted[1])).GetProperty("status").GetString().ShouldBe("queued");

        foreach (var (client, path) in new[] { (acme, "/v1/jobs"), (operatorClient, "/v1/analytics/usage"), (operatorClient, "/v1/audit/events") })
        {
            using var read = await client.GetAsync(path);
            answers.Add($"{path} {(int)read.StatusCode}");
            read.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable, path);
            read.Headers.RetryAfter.ShouldNotBeNull(path);
            read.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        }

        // A key the store never confirmed cannot be checked now: unavailable, not "unknown".
        using var stranger = Client("cqrsi_000000000000_never-issued");
        (await stranger.GetAsync("/v1/jobs")).StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);

        accepted.Count.ShouldBe(10, string.Join(", ", answers));
        await _postgres.StartAgainAsync();
        foreach (var id in accepted)
        {
            await acme.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(90));
        }

        (await acme.GetAsync("/v1/jobs")).StatusCode.ShouldBe(HttpStatusCode.OK);
        foreach (var id in accepted)
        {
            var types = (await acme.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}/events")).EnumerateArray().Select(e => e.GetProperty("type").GetString()).ToList();
            types.ShouldBe(["v1.job_submitted", "v1.job_succeeded"], $"job {id} recorded once, whichever process led");
        }

        // The sealer and the roll-ups went on after the outage: every event sealed, every job counted.
        await Retry.Until("the sealer to seal every event", () => operatorClient.GetFromJsonAsync<JsonElement>("/v1/audit/verify"),
            report => report.GetProperty("intact").GetBoolean() && report.GetProperty("unsealedEvents").GetInt64() == 0, TimeSpan.FromSeconds(60));
        var now = DateTimeOffset.UtcNow;
        var range = $"from={Uri.EscapeDataString(now.AddHours(-1).ToString("O"))}&to={Uri.EscapeDataString(now.AddHours(1).ToString("O"))}";
        await Retry.Until("the usage roll-up to count every job", () => operatorClient.GetFromJsonAsync<JsonElement>($"/v1/analytics/usage?{range}&groupBy=tenant"),
            rows => rows.EnumerateArray().Where(r => r.GetProperty("tenant").GetString() == "acme").Sum(r => r.GetProperty("succeeded").GetInt64()) == accepted.Count + 1,
            TimeSpan.FromSeconds(60));

        // Neither process gave up when its database went away.
        foreach (var host in new[] { _host, _standby })
        {
            host.Services.GetRequiredService<Microsoft.Extensions.Hosting.IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested.ShouldBeFalse();
        }
    }

    [Fact]
    public async Task A_hung_postgres_holds_up_a_known_keys_submits_for_seconds_not_the_drivers_timeouts()
    {
        using var operatorClient = Client(TestEnvironment.OperatorKey);
        using var created = await operatorClient.PostAsJsonAsync("/v1/admin/keys", new { tenant = "hung", name = "app", roles = new[] { "submit", "read" } });
        using var app = Client((await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString());
        (await app.SubmitAsync(Scenarios.MlpJob([1, 1, 1, 1]))).Status.ShouldBe(HttpStatusCode.Accepted);

        // PostgreSQL answers nothing (its connections stay open): a submit needs only NATS, and the
        // key's look-up waits Api:KeyCache:AskWithin (2 s) once, not the driver's timeouts
        // (15 s to connect, 30 s per command) on every request, and the read model's idempotency
        // look-up waits 2 s at most.
        await _postgres.FreezeAsync();
        var accepted = new List<Guid>();
        var took = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            for (var i = 0; i < 5; i++)
            {
                // The last two with an Idempotency-Key, whose look-up in the read model waits 2 s at most.
                var job = await app.SubmitAsync(Scenarios.MlpJob([i, 2, 2, 2]), idempotencyKey: i >= 3 ? $"hung-{i}" : null);
                job.Status.ShouldBe(HttpStatusCode.Accepted);
                accepted.Add(job.Id);
            }

            took.Stop();

            // What the API holds answers from memory; readiness says not ready; a retried key names
            // its job: each within seconds, not the driver's timeouts.
            // Its status from memory; the waiting estimate and the cost wait 2 s each at most.
            await Within(TimeSpan.FromSeconds(8), "a fresh job's read", async () =>
                (await app.GetJobAsync(accepted[0])).GetProperty("id").GetGuid().ShouldBe(accepted[0]));
            await Within(TimeSpan.FromSeconds(8), "a read of a job it does not hold", async () =>
            {
                using var unknown = await app.GetAsync($"/v1/jobs/{Guid.NewGuid()}");
                unknown.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);
                unknown.Headers.RetryAfter.ShouldNotBeNull();
            });
            await Within(TimeSpan.FromSeconds(8), "readiness", async () =>
            {
                using var ready = await app.GetAsync("/health");
                ready.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);
            });
            await Within(TimeSpan.FromSeconds(8), "a retried submit", async () =>
                (await app.SubmitAsync(Scenarios.MlpJob([3, 2, 2, 2]), idempotencyKey: "hung-3")).Id.ShouldBe(accepted[3]));
        }
        finally
        {
            await _postgres.ThawAsync();
        }

        took.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(13), "five submits with a known key while PostgreSQL hung");
        foreach (var id in accepted)
        {
            await app.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(90));
        }

        // The key still names the same job once the store answers again.
        (await app.SubmitAsync(Scenarios.MlpJob([4, 2, 2, 2]), idempotencyKey: "hung-4")).Id.ShouldBe(accepted[4]);
    }

    [Fact]
    public async Task Readiness_says_not_ready_within_seconds_while_nats_server_hangs_and_ready_again_after()
    {
        using var client = Client(TestEnvironment.OperatorKey);
        await Retry.Until("the API to be ready", () => client.GetAsync("/health"), ready => ready.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(60));

        await _nats.FreezeAsync();
        try
        {
            // Before, the probe hung as long as the server did (190 s in a 3-minute freeze), then said healthy.
            await Within(TimeSpan.FromSeconds(8), "readiness while nats-server hangs", async () =>
            {
                using var ready = await client.GetAsync("/health");
                ready.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);
            });

            // The API's job event feed notices the hang and stays unavailable while it lasts; it used
            // to say it worked again a second after each failure (its consumer is made on the server
            // only once consuming starts), so cqrsi_role_unavailable flapped.
            var feed = _host.Services.GetRequiredService<CqrsInference.Messaging.OutageWatches>().For("job event feed");
            await Retry.Until("the feed to notice the hang", () => Task.FromResult(feed.FailingSince), since => since is not null, TimeSpan.FromSeconds(60));
            for (var i = 0; i < 24; i++)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500));
                feed.FailingSince.ShouldNotBeNull($"the feed said it worked {i * 0.5:0.0} s after it noticed the hang, while nats-server still hung");
            }
        }
        finally
        {
            await _nats.ThawAsync();
        }

        await Retry.Until("the API to be ready again", () => client.GetAsync("/health"), ready => ready.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(60));
    }

    private static async Task Within(TimeSpan limit, string what, Func<Task> action)
    {
        var took = System.Diagnostics.Stopwatch.StartNew();
        await action();
        took.Elapsed.ShouldBeLessThan(limit, what);
    }

    [Fact]
    public async Task Submits_while_nats_is_down_answer_503_reads_from_postgres_go_on_and_work_resumes_when_it_returns()
    {
        using var client = Client(TestEnvironment.OperatorKey);
        var before = await client.SubmitAsync(Scenarios.MlpJob([4, 3, 2, 1]));
        await client.WaitForStatusAsync(before.Id, "succeeded");

        await _nats.StopProcessAsync();
        var during = await client.SubmitAsync(Scenarios.MlpJob([5, 5, 5, 5]));
        during.Status.ShouldBe(HttpStatusCode.ServiceUnavailable);
        (await client.GetAsync($"/v1/jobs/{before.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // The 503 names the job it may or may not have stored, so a caller without an
        // Idempotency-Key can ask for it rather than submit it again: here it was not stored.
        var named = during.Body.GetProperty("jobId").GetGuid();
        during.Body.GetProperty("detail").GetString()!.ShouldContain($"GET /v1/jobs/{named}");
        (await client.GetAsync($"/v1/jobs/{named}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);

        // A bulk submit's 503 names every job of it, in order: any of them may have been stored.
        using var bulk = await client.PostAsync("/v1/jobs:bulk", new StringContent(
            $"{{\"jobs\":[{Scenarios.MlpJob([1, 1, 1, 1])},{Scenarios.MlpJob([2, 2, 2, 2])}]}}", System.Text.Encoding.UTF8, "application/json"));
        bulk.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);
        var bulkProblem = await bulk.Content.ReadFromJsonAsync<JsonElement>();
        var bulkIds = bulkProblem.GetProperty("jobIds").EnumerateArray().Select(id => id.GetGuid()).ToList();
        bulkIds.Count.ShouldBe(2);
        bulkIds.Distinct().Count().ShouldBe(2);
        bulkProblem.GetProperty("detail").GetString()!.ShouldContain("2 jobs");
        (await client.GetAsync($"/v1/jobs/{bulkIds[1]}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);

        await _nats.StartProcessAsync();
        var after = await Retry.Until("the API to take jobs again", () => client.SubmitAsync(Scenarios.MlpJob([6, 6, 6, 6])),
            job => job.Status == HttpStatusCode.Accepted, TimeSpan.FromSeconds(60));
        await client.WaitForStatusAsync(after.Id, "succeeded", TimeSpan.FromSeconds(60));
        await Retry.Until("the sealer to seal every event after the restart", () => client.GetFromJsonAsync<JsonElement>("/v1/audit/verify"),
            report => report.GetProperty("intact").GetBoolean() && report.GetProperty("unsealedEvents").GetInt64() == 0, TimeSpan.FromSeconds(60));
        _host.Services.GetRequiredService<Microsoft.Extensions.Hosting.IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested.ShouldBeFalse();
    }

    private HttpClient Client(string? key)
    {
        var client = _host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", key);
        return client;
    }
}
