using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using CqrsInference.Projections;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Deployment;

/// <summary>
/// appsettings.Production.json: no anonymous callers, and no schema changes at start (the
/// <c>migrate</c> command makes them); secrets from files (CQRSI_SECRETS_DIR).
/// </summary>
public sealed class ProductionConfigurationTests : IAsyncLifetime
{
    private NatsServerProcess _nats = null!;

    public async Task InitializeAsync() => _nats = await NatsServerProcess.StartAsync();

    public async Task DisposeAsync() => await _nats.DisposeAsync();

    [Fact]
    public async Task Production_start_on_an_unmigrated_schema_fails_naming_migrate_then_works_after_migrate_and_refuses_anonymous_callers()
    {
        var schema = TestEnvironment.NewSchema();
        await using (var unmigrated = new ProductionHost(_nats.Url, schema, "api"))
        {
            var failure = Should.Throw<Exception>(() => unmigrated.CreateClient());
            var notMigrated = Chain(failure).OfType<SchemaNotMigratedException>().FirstOrDefault();
            notMigrated.ShouldNotBeNull(failure.ToString());
            notMigrated.Message.ShouldContain("migrate");
            notMigrated.Message.ShouldContain(schema);
            notMigrated.Pending.ShouldContain(p => p.Contains("mt_events", StringComparison.Ordinal));
        }

        var (code, output) = await MigrateAsync(schema);
        code.ShouldBe(0, output);
        output.ShouldContain("READY");
        (code, output) = await MigrateAsync(schema);
        code.ShouldBe(0, output);
        output.ShouldContain("0 object(s) of Marten's to create or change");

        await using var production = new ProductionHost(_nats.Url, schema, "api");
        using var anonymous = production.CreateClient();
        using (var models = await anonymous.GetAsync("/v1/models"))
        {
            models.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        }

        using var submit = await anonymous.PostAsync("/v1/jobs", new StringContent(Fixtures.Scenarios.MlpJob([1, 2, 3, 4]), System.Text.Encoding.UTF8, "application/json"));
        submit.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        using var alive = await anonymous.GetAsync("/alive");
        alive.StatusCode.ShouldBe(HttpStatusCode.OK);

        // What the framework cannot bind is named in Production too (it answered a bare 400 there).
        await using var keyed = new ProductionHost(_nats.Url, schema, "api", new Dictionary<string, string?> { ["CQRSI_API_KEY"] = TestEnvironment.OperatorKey });
        using var operatorClient = keyed.CreateClient();
        operatorClient.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TestEnvironment.OperatorKey);
        using var limit = await operatorClient.GetAsync("/v1/jobs?limit=abc");
        limit.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await limit.Content.ReadAsStringAsync()).ShouldContain("limit must be a whole number, not 'abc'.");
        using var roles = await operatorClient.PostAsync("/v1/admin/keys",
            new StringContent("""{"tenant":"acme","name":"k","roles":"read"}""", System.Text.Encoding.UTF8, "application/json"));
        roles.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await roles.Content.ReadAsStringAsync()).ShouldContain("roles is not of the type this endpoint reads");
    }

    [Fact]
    public async Task A_process_that_cannot_start_says_why_in_one_line_without_the_hosts_stack_trace()
    {
        // A start refused by a hosted service (here the schema check): the host's own "Hosting
        // failed to start" came first, with a stack trace of a dozen lines, before the one line
        // that says what to do.
        var (code, output) = await ProcessorProcess.RunToExitAsync(_nats.Url, "unmigrated", new Dictionary<string, string>
        {
            ["Cqrsi:Roles"] = "projections",
            ["Cqrsi:Schema"] = TestEnvironment.NewSchema(),
            ["Cqrsi:ApplySchemaChanges"] = "false",
            ["ConnectionStrings:Postgres"] = TestEnvironment.Postgres,
        });

        code.ShouldBe(78, output);
        output.ShouldContain("error: CqrsInference did not start: The PostgreSQL schema");
        output.ShouldContain("run `CqrsInference.Api migrate`");
        output.ShouldNotContain("Hosting failed to start");
        output.ShouldNotContain("   at ", customMessage: "a refused start is not a crash: no stack trace");
    }

    [Fact]
    public async Task Secret_files_win_over_the_environment_for_the_connection_string_and_the_operator_key()
    {
        var secrets = Directory.CreateTempSubdirectory("cqrsi-secrets-");
        try
        {
            // A final newline, as an editor or `echo` leaves it, is not part of the secret.
            await File.WriteAllTextAsync(Path.Combine(secrets.FullName, "ConnectionStrings__Postgres"), TestEnvironment.Postgres + "\n");
            await File.WriteAllTextAsync(Path.Combine(secrets.FullName, "CQRSI_API_KEY"), "operator-key-from-a-file\n");
            await using var host = new PipelineHost(_nats.Url, TestEnvironment.NewSchema(), "api", new Dictionary<string, string?>
            {
                ["CQRSI_SECRETS_DIR"] = secrets.FullName,
                // What the environment says loses to the files: this server does not exist.
                ["ConnectionStrings:Postgres"] = "Host=127.0.0.1;Port=1;Database=nowhere;Username=nobody;Timeout=2",
                ["Api:AllowAnonymous"] = "false",
            });

            (await ListKeysAsync(host, "operator-key-from-a-file")).ShouldBe(HttpStatusCode.OK);
            (await ListKeysAsync(host, TestEnvironment.OperatorKey)).ShouldBe(HttpStatusCode.Unauthorized);
        }
        finally
        {
            secrets.Delete(recursive: true);
        }
    }

    private static async Task<HttpStatusCode> ListKeysAsync(PipelineHost host, string key)
    {
        using var client = host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var response = await client.GetAsync("/v1/admin/keys");
        return response.StatusCode;
    }

    /// <summary>The real command line: <c>CqrsInference.Api migrate</c> in a process of its own, as a deployment runs it.</summary>
    private static async Task<(int Code, string Output)> MigrateAsync(string schema)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "CqrsInference.Api.dll"));
        info.ArgumentList.Add("migrate");
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        info.Environment["ConnectionStrings__Postgres"] = TestEnvironment.Postgres;
        info.Environment["Cqrsi__Schema"] = schema;
        info.Environment["Models__Directory"] = TestEnvironment.ModelsDirectory;
        info.Environment["Models__Manifest"] = TestEnvironment.Manifest;
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output + await errors);
    }

    private static IEnumerable<Exception> Chain(Exception e)
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            yield return current;
            if (current is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions.SelectMany(Chain))
                {
                    yield return inner;
                }
            }
        }
    }
}
