using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Batches;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Npgsql;

namespace CqrsInference.Tests.Audit;

/// <summary>A pipeline whose sealer runs often, with some finished jobs to audit.</summary>
public sealed class AuditTests(PipelineWithSealedJobs audit) : IClassFixture<PipelineWithSealedJobs>
{
    [Fact]
    public async Task Untouched_store_verifies_clean()
    {
        var report = await audit.VerifyAsync();

        report.GetProperty("intact").GetBoolean().ShouldBeTrue();
        report.GetProperty("firstBroken").ValueKind.ShouldBe(JsonValueKind.Null);
        report.GetProperty("chainHead").GetString()!.Length.ShouldBe(64);
    }

    [Fact]
    public async Task An_edited_payload_is_named_by_verify()
    {
        var job = audit.Jobs[1];
        var sequence = await audit.SequenceOfAsync(job, 2);
        await audit.SqlAsync($"create table {{schema}}.saved_{sequence} as select * from {{schema}}.mt_events where seq_id = {sequence}");
        try
        {
            await audit.SqlAsync($$"""update {schema}.mt_events set data = jsonb_set(data, '{RunMs}', '0.001') where seq_id = {{sequence}}""");

            var broken = (await audit.VerifyAsync()).GetProperty("firstBroken");

            broken.GetProperty("sequence").GetInt64().ShouldBe(sequence);
            broken.GetProperty("streamId").GetGuid().ShouldBe(job);
            broken.GetProperty("version").GetInt64().ShouldBe(2);
            broken.GetProperty("problem").GetString()!.ShouldContain("altered");
        }
        finally
        {
            await audit.SqlAsync($"update {{schema}}.mt_events e set data = s.data from {{schema}}.saved_{sequence} s where e.seq_id = s.seq_id; drop table {{schema}}.saved_{sequence}");
        }

        (await audit.VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task A_deleted_event_is_named_by_verify()
    {
        var job = audit.Jobs[2];
        var sequence = await audit.SequenceOfAsync(job, 2);
        await audit.SqlAsync($"create table {{schema}}.saved_{sequence} as select * from {{schema}}.mt_events where seq_id = {sequence}");
        try
        {
            await audit.SqlAsync($"delete from {{schema}}.mt_events where seq_id = {sequence}");

            var broken = (await audit.VerifyAsync()).GetProperty("firstBroken");

            broken.GetProperty("sequence").GetInt64().ShouldBe(sequence);
            broken.GetProperty("problem").GetString()!.ShouldContain("deleted");
        }
        finally
        {
            await audit.SqlAsync($"insert into {{schema}}.mt_events select * from {{schema}}.saved_{sequence}; drop table {{schema}}.saved_{sequence}");
        }

        (await audit.VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task A_reordered_event_is_named_by_verify()
    {
        // Swap the versions of a job's submission and its ending: the history now says it
        // succeeded before it was submitted.
        var job = audit.Jobs[3];
        var started = await audit.SequenceOfAsync(job, 1);
        var succeeded = await audit.SequenceOfAsync(job, 2);
        async Task Swap() => await audit.SqlAsync(
            $$"""
            update {schema}.mt_events set version = -1 where seq_id = {{started}};
            update {schema}.mt_events set version = 1 where seq_id = {{succeeded}};
            update {schema}.mt_events set version = 2 where seq_id = {{started}};
            """);
        await Swap();
        try
        {
            var broken = (await audit.VerifyAsync()).GetProperty("firstBroken");

            broken.GetProperty("sequence").GetInt64().ShouldBe(started);
            broken.GetProperty("problem").GetString()!.ShouldContain("moved");
        }
        finally
        {
            await audit.SqlAsync(
                $$"""
                update {schema}.mt_events set version = -1 where seq_id = {{started}};
                update {schema}.mt_events set version = 2 where seq_id = {{succeeded}};
                update {schema}.mt_events set version = 1 where seq_id = {{started}};
                """);
        }

        (await audit.VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task Replay_rebuilds_the_live_read_model_exactly_and_names_a_tampered_document()
    {
        using var identical = await audit.Admin.PostAsync("/v1/admin/replay?projection=job-status", null);
        var report = await identical.Content.ReadFromJsonAsync<JsonElement>();
        report.GetProperty("identical").GetBoolean().ShouldBeTrue(report.ToString());
        report.GetProperty("events").GetInt64().ShouldBeGreaterThanOrEqualTo(10);
        report.GetProperty("documents").GetInt64().ShouldBe(audit.Jobs.Count);

        var job = audit.Jobs[4];
        await audit.SqlAsync($$"""update {schema}.mt_doc_jobstatus set data = jsonb_set(data, '{Attempts}', '7') where id = '{{job}}'""");
        try
        {
            using var different = await audit.Admin.PostAsync("/v1/admin/replay", null);
            var tampered = await different.Content.ReadFromJsonAsync<JsonElement>();
            tampered.GetProperty("identical").GetBoolean().ShouldBeFalse();
            tampered.GetProperty("differences")[0].GetProperty("id").GetGuid().ShouldBe(job);
            tampered.GetProperty("differences")[0].GetProperty("problem").GetString().ShouldBe("differs in Attempts: live 7, rebuilt 1");
        }
        finally
        {
            await audit.SqlAsync($$"""update {schema}.mt_doc_jobstatus set data = jsonb_set(data, '{Attempts}', '1') where id = '{{job}}'""");
        }
    }

    [Fact]
    public async Task Verify_and_replay_run_from_the_command_line()
    {
        foreach (var verb in new[] { "verify", "replay" })
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "CqrsInference.Api.dll"));
            info.ArgumentList.Add(verb);
            info.Environment["ConnectionStrings__Postgres"] = TestEnvironment.Postgres;
            info.Environment["Cqrsi__Schema"] = audit.Host.Schema;
            using var process = Process.Start(info)!;
            var output = await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();

            process.ExitCode.ShouldBe(0, output + await process.StandardError.ReadToEndAsync());
            output.ShouldContain(verb == "verify" ? "INTACT" : "IDENTICAL");
        }
    }

    [Fact]
    public async Task Audit_feed_pages_the_tenants_events_in_sequence_order()
    {
        var page = await audit.Admin.GetFromJsonAsync<JsonElement>("/v1/audit/events?limit=4");
        var first = page.GetProperty("events").EnumerateArray().ToList();
        first.Count.ShouldBe(4);
        var next = page.GetProperty("nextSequence").GetInt64();
        var rest = await audit.Admin.GetFromJsonAsync<JsonElement>($"/v1/audit/events?fromSequence={next}&limit=1000");

        var all = first.Concat(rest.GetProperty("events").EnumerateArray()).ToList();
        all.Count.ShouldBe(audit.Jobs.Count * 2);
        var sequences = all.Select(e => e.GetProperty("sequence").GetInt64()).ToList();
        sequences.ShouldBe(sequences.Order().Distinct().ToList());
        rest.GetProperty("nextSequence").ValueKind.ShouldBe(JsonValueKind.Null);
        all[0].GetProperty("type").GetString().ShouldBe("v1.job_submitted");
        all[0].GetProperty("data").GetProperty("Tenant").GetString().ShouldBe("default");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/audit/events");
        request.Headers.Accept.ParseAdd("application/x-ndjson");
        using var ndjson = await audit.Admin.SendAsync(request);
        ndjson.Content.Headers.ContentType!.MediaType.ShouldBe("application/x-ndjson");
        var lines = (await ndjson.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Length.ShouldBe(all.Count);
        lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("sequence").GetInt64()).ShouldBe(sequences);
    }

    [Fact]
    public async Task Audit_endpoints_need_the_auditor_role_and_see_only_their_tenant()
    {
        using var created = await audit.Admin.PostAsJsonAsync("/v1/admin/keys", new { tenant = "other", roles = new[] { "auditor" } });
        var otherAuditor = audit.Host.CreateClient();
        otherAuditor.DefaultRequestHeaders.Authorization = new("Bearer", (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString());
        using var readerKey = await audit.Admin.PostAsJsonAsync("/v1/admin/keys", new { tenant = "default", roles = new[] { "read" } });
        var reader = audit.Host.CreateClient();
        reader.DefaultRequestHeaders.Authorization = new("Bearer", (await readerKey.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString());

        var others = await otherAuditor.GetFromJsonAsync<JsonElement>("/v1/audit/events");
        others.GetProperty("events").GetArrayLength().ShouldBe(0);
        (await otherAuditor.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]))).Status.ShouldBe(HttpStatusCode.Forbidden);
        (await reader.GetAsync("/v1/audit/events")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await reader.GetAsync("/v1/audit/verify")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await otherAuditor.GetAsync("/v1/audit/events?tenant=default")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await otherAuditor.GetAsync("/v1/audit/events?tenant=other")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task The_platform_operator_reads_any_tenants_audit_feed_by_naming_it_its_batches_events_included()
    {
        using var created = await audit.Admin.PostAsJsonAsync("/v1/admin/keys", new { tenant = "audited", roles = new[] { "submit", "read", "auditor" } });
        using var tenant = audit.Host.CreateClient();
        tenant.DefaultRequestHeaders.Authorization = new("Bearer", (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString());
        var job = await tenant.SubmitAsync(Scenarios.MlpJob([4, 3, 2, 1]));
        await tenant.WaitForStatusAsync(job.Id, "succeeded");
        var batch = await tenant.SubmitBatchAsync(BatchScenarios.File([BatchScenarios.Line(1)]));
        batch.Status.ShouldBe(HttpStatusCode.Accepted);

        bool Holds(JsonElement page, Guid stream, string type) =>
            page.GetProperty("events").EnumerateArray().Any(e => e.GetProperty("streamId").GetGuid() == stream && e.GetProperty("type").GetString() == type);
        var own = await Retry.Until("the tenant's job and batch to be recorded", () => tenant.GetFromJsonAsync<JsonElement>("/v1/audit/events"),
            p => Holds(p, job.Id, "v1.job_succeeded") && Holds(p, batch.Id, "v1.batch_submitted"));
        var named = await audit.Admin.GetFromJsonAsync<JsonElement>($"/v1/audit/events?tenant=audited&limit={own.GetProperty("events").GetArrayLength()}");

        Sequences(named).ShouldBe(Sequences(own));
        Sequences(await audit.Admin.GetFromJsonAsync<JsonElement>("/v1/audit/events?limit=10000")).ShouldNotContain(Sequences(own)[0]); // its own tenant's by default
    }

    private static List<long> Sequences(JsonElement page) => page.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("sequence").GetInt64()).ToList();
}
