using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;
using Npgsql;

namespace CqrsInference.Tests.Fixtures;

public sealed class PipelineWithSealedJobs : PipelineWithAllRoles
{
    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["CQRSI_API_KEY"] = PipelineRequiringKeys.AdminKey,
        ["Api:AllowAnonymous"] = "false",
    };

    public List<Guid> Jobs { get; } = [];

    public HttpClient Admin { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        Admin = Host.CreateClient();
        Admin.DefaultRequestHeaders.Authorization = new("Bearer", PipelineRequiringKeys.AdminKey);
        for (var i = 0; i < 5; i++)
        {
            var job = await Admin.SubmitAsync(Scenarios.MlpJob([i, 1, 1, 1]));
            Jobs.Add(job.Id);
        }

        foreach (var id in Jobs)
        {
            await Admin.WaitForStatusAsync(id, "succeeded");
        }

        await WaitUntilSealedAsync();
    }

    public async Task<JsonElement> VerifyAsync() => await Admin.GetFromJsonAsync<JsonElement>("/v1/audit/verify");

    public Task WaitUntilSealedAsync() =>
        Retry.Until("every event to be sealed", VerifyAsync, r => r.GetProperty("unsealedEvents").GetInt64() == 0 && r.GetProperty("sealsChecked").GetInt64() >= 10);

    public async Task SqlAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(TestEnvironment.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql.Replace("{schema}", Host.Schema, StringComparison.Ordinal), connection);
        await command.ExecuteNonQueryAsync();
    }

    public async Task<long> SequenceOfAsync(Guid job, long version)
    {
        await using var connection = new NpgsqlConnection(TestEnvironment.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"select seq_id from {Host.Schema}.mt_events where stream_id = $1 and version = $2", connection);
        command.Parameters.AddWithValue(job);
        command.Parameters.AddWithValue(version);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
