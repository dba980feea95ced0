using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace CqrsInference.Tests.Security;

/// <summary>Keys required (no anonymous access), with the development key acting as admin.</summary>
public sealed class ApiKeyTests(PipelineRequiringKeys pipeline) : IClassFixture<PipelineRequiringKeys>
{
    [Theory]
    [InlineData(null)]
    [InlineData("wrong")]
    [InlineData("cqrsi_000000000000_not-the-secret")]
    public async Task Every_endpoint_answers_401_without_a_valid_key(string? key)
    {
        using var client = pipeline.ClientWith(key);
        var id = Guid.NewGuid();
        foreach (var response in new[]
        {
            await client.PostAsync("/v1/jobs", new StringContent(Scenarios.MlpJob([1, 2, 3, 4]), Encoding.UTF8, "application/json")),
            await client.GetAsync($"/v1/jobs/{id}"),
            await client.GetAsync($"/v1/jobs/{id}/events"),
            await client.GetAsync("/v1/models"),
            await client.GetAsync("/v1/admin/keys"),
        })
        {
            response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
            response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");

            // RFC 6750: a bare challenge without credentials; invalid_token and why when a key was sent.
            var challenge = response.Headers.WwwAuthenticate.ShouldHaveSingleItem();
            challenge.Scheme.ShouldBe("Bearer");
            if (key is null)
            {
                challenge.Parameter.ShouldBeNull();
            }
            else
            {
                challenge.Parameter.ShouldStartWith("error=\"invalid_token\", error_description=\"");
            }
        }
    }

    [Fact]
    public async Task Two_authorization_headers_are_refused_saying_so_even_when_both_keys_are_valid()
    {
        using var client = pipeline.ClientWith(null);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.TryAddWithoutValidation("Authorization", [$"Bearer {PipelineRequiringKeys.AdminKey}", $"Bearer {PipelineRequiringKeys.AdminKey}"]);

        using var response = await client.SendAsync(request);

        response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        response.Headers.WwwAuthenticate.ShouldHaveSingleItem().Parameter!.ShouldContain("Send one Authorization header, not 2.");
    }

    [Fact]
    public async Task Another_tenants_job_is_not_found_on_every_endpoint()
    {
        using var alice = pipeline.ClientWith(await pipeline.CreateKeyAsync("alice", "submit", "read"));
        using var bob = pipeline.ClientWith(await pipeline.CreateKeyAsync("bob", "submit", "read"));
        var job = await alice.SubmitAsync(Scenarios.MlpJob([1, 0, 0, 0]));
        await alice.WaitForStatusAsync(job.Id, "succeeded");

        (await bob.GetAsync($"/v1/jobs/{job.Id}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await bob.GetAsync($"/v1/jobs/{job.Id}?version=1")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await bob.GetAsync($"/v1/jobs/{job.Id}/events")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await bob.GetAsync($"/v1/jobs/{job.Id}/stream")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await bob.DeleteAsync($"/v1/jobs/{job.Id}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await bob.PostAsync($"/v1/jobs/{job.Id}:cancel", null)).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await alice.GetAsync($"/v1/jobs/{job.Id}/events")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // The same Idempotency-Key in two tenants names two different jobs.
        var key = Guid.NewGuid().ToString();
        var a = await alice.SubmitAsync(Scenarios.MlpJob([1, 1, 0, 0]), key);
        var b = await bob.SubmitAsync(Scenarios.MlpJob([1, 1, 0, 0]), key);
        b.Id.ShouldNotBe(a.Id);
    }

    [Theory]
    [InlineData("Bearer ")]
    [InlineData("bearer")]
    public async Task An_empty_bearer_token_is_named_as_such(string header)
    {
        using var client = pipeline.ClientWith(null);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.TryAddWithoutValidation("Authorization", header);

        using var response = await client.SendAsync(request);

        response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString()!
            .ShouldStartWith("The bearer token is empty (is the variable that holds the key set?).");
    }

    [Fact]
    public async Task Key_without_the_role_gets_403()
    {
        using var reader = pipeline.ClientWith(await pipeline.CreateKeyAsync("carol", "read"));
        using var auditor = pipeline.ClientWith(await pipeline.CreateKeyAsync("carol", "auditor"));

        (await reader.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]))).Status.ShouldBe(HttpStatusCode.Forbidden);
        using var forbidden = await reader.PostAsync("/v1/jobs", new StringContent(Scenarios.MlpJob([1, 2, 3, 4]), Encoding.UTF8, "application/json"));
        forbidden.Headers.WwwAuthenticate.ShouldHaveSingleItem().ToString().ShouldBe("Bearer error=\"insufficient_scope\"");
        (await forbidden.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString().ShouldBe("This key lacks what this needs: the role submit.");
        (await auditor.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]))).Status.ShouldBe(HttpStatusCode.Forbidden);
        (await reader.PostAsJsonAsync("/v1/admin/keys", new { tenant = "carol", roles = new[] { "admin" } })).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
    }

    [Theory]
    [InlineData("bearer")]
    [InlineData("BEARER")]
    public async Task The_bearer_scheme_is_read_in_any_case(string scheme)
    {
        using var client = pipeline.ClientWith(null);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(scheme, await pipeline.CreateKeyAsync("frank", "read"));

        (await client.GetAsync("/v1/models")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_tenants_admin_cannot_revoke_an_operator_key_made_under_its_tenant()
    {
        var operatorKey = await pipeline.CreateKeyAsync("erin", "operator");
        using var erinsAdmin = pipeline.ClientWith(await pipeline.CreateKeyAsync("erin", "admin"));

        using var refused = await erinsAdmin.DeleteAsync($"/v1/admin/keys/{operatorKey.Split('_')[1]}");

        refused.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await refused.Content.ReadAsStringAsync()).ShouldContain("only the platform operator revokes it");
        using var stillWorks = pipeline.ClientWith(operatorKey);
        (await stillWorks.GetAsync("/v1/admin/keys?tenant=erin")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("""{"tenant":"erin","name":"k","roles":["read"],"extra":1}""", "extra")]
    [InlineData("""{"tenant":"erin","name":"k","role":["read"]}""", "role")]
    public async Task A_key_request_with_a_field_it_does_not_have_is_422_naming_it_and_creates_no_key(string body, string field)
    {
        using var admin = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        var before = (await admin.GetFromJsonAsync<JsonElement>("/v1/admin/keys?tenant=erin")).GetArrayLength();

        using var response = await admin.PostAsync("/v1/admin/keys", new StringContent(body, Encoding.UTF8, "application/json"));

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").GetProperty(field)[0].GetString()!.ShouldStartWith($"Unknown field '{field}'");
        (await admin.GetFromJsonAsync<JsonElement>("/v1/admin/keys?tenant=erin")).GetArrayLength().ShouldBe(before);

        using var twice = await admin.PostAsync("/v1/admin/keys",
            new StringContent("""{"tenant":"erin","name":"k","roles":["read"],"roles":["admin"]}""", Encoding.UTF8, "application/json"));
        twice.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await admin.GetFromJsonAsync<JsonElement>("/v1/admin/keys?tenant=erin")).GetArrayLength().ShouldBe(before);
    }

    [Fact]
    public async Task A_stream_opened_with_a_key_ends_when_the_key_is_revoked_and_sends_nothing_after()
    {
        var key = await pipeline.CreateKeyAsync("frank", "read");
        using var submitter = pipeline.ClientWith(await pipeline.CreateKeyAsync("frank", "submit", "read"));
        using var admin = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        using var reader = pipeline.ClientWith(key);
        using var response = await reader.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/v1/events/stream"), HttpCompletionOption.ResponseHeadersRead);
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        using var events = new StreamReader(await response.Content.ReadAsStreamAsync());
        (await events.ReadLineAsync()).ShouldBe("event: hello");

        (await admin.DeleteAsync($"/v1/admin/keys/{key.Split('_')[1]}")).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        var after = await submitter.SubmitAsync(Scenarios.MlpJob([7, 7, 7, 7]));
        await submitter.WaitForStatusAsync(after.Id, "succeeded");

        // The job's change is the next event the stream would send: it ends instead.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var rest = new StringBuilder();
        while (await events.ReadLineAsync(timeout.Token) is { } line)
        {
            rest.AppendLine(line);
        }

        rest.ToString().ShouldNotContain(after.Id.ToString());
    }

    [Fact]
    public async Task Revoked_key_stops_working_at_once()
    {
        var key = await pipeline.CreateKeyAsync("dave", "submit", "read");
        using var dave = pipeline.ClientWith(key);
        using var admin = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        (await dave.GetAsync("/v1/models")).StatusCode.ShouldBe(HttpStatusCode.OK);
        var id = key.Split('_')[1];

        (await admin.DeleteAsync($"/v1/admin/keys/{id}")).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        (await dave.GetAsync("/v1/models")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await dave.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]))).Status.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_key_revoked_on_another_instance_stops_working_here_within_the_key_caches_fresh_time()
    {
        var key = await pipeline.CreateKeyAsync("grace", "submit", "read");
        using var grace = pipeline.ClientWith(key);
        (await grace.GetAsync("/v1/models")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // Another API instance revokes it: the store says so, this instance was not told.
        var store = pipeline.Host.Services.GetRequiredService<Marten.IDocumentStore>();
        await using (var session = store.LightweightSession())
        {
            var stored = await session.LoadAsync<Api.Security.ApiKey>(key.Split('_')[1]);
            session.Store(stored! with { RevokedAt = DateTimeOffset.UtcNow });
            await session.SaveChangesAsync();
        }

        var revoked = System.Diagnostics.Stopwatch.StartNew();
        await Retry.Until("the key to be refused", () => grace.GetAsync("/v1/models"), answer => answer.StatusCode == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(30));
        revoked.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(15), "Api:KeyCache:FreshFor is 5 s");
    }

    [Fact]
    public async Task Keys_are_stored_only_as_hashes()
    {
        var key = await pipeline.CreateKeyAsync("erin", "read");
        var secret = key.Split('_', 3)[2];

        await using var connection = new NpgsqlConnection(TestEnvironment.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"select string_agg(data::text, '') from {pipeline.Host.Schema}.mt_doc_apikey", connection);
        var stored = (string)(await command.ExecuteScalarAsync())!;

        stored.ShouldContain("erin");
        stored.ShouldNotContain(secret);
        using var admin = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        (await admin.GetStringAsync("/v1/admin/keys?tenant=erin")).ShouldNotContain(secret);
    }

    [Fact]
    public async Task Invalid_key_requests_are_refused_with_the_fields()
    {
        using var admin = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);

        using var response = await admin.PostAsJsonAsync("/v1/admin/keys", new { tenant = "Not A Token!", roles = new[] { "superuser" } });

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        var errors = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors");
        errors.TryGetProperty("tenant", out _).ShouldBeTrue();
        errors.TryGetProperty("roles", out _).ShouldBeTrue();
    }
}
