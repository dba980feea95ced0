using System.Net;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Inference;

/// <summary>The /v2 endpoints under the same keys, roles and tenants as /v1.</summary>
public sealed class OpenInferenceProtocolKeysTests(PipelineRequiringKeys pipeline) : IClassFixture<PipelineRequiringKeys>
{
    [Fact]
    public async Task No_key_is_401_and_a_key_without_the_role_403_in_the_v2_shape_while_health_stays_public()
    {
        using var anonymous = pipeline.ClientWith(null);
        using var reader = pipeline.ClientWith(await pipeline.CreateKeyAsync("alfa", "read"));
        var request = V2Scenarios.MlpRequest([1, 2, 3, 4]);

        var noKey = await anonymous.InferAsync("mlp-test", request);
        noKey.Status.ShouldBe(HttpStatusCode.Unauthorized);
        noKey.Error();
        (await anonymous.GetV2Async("/v2/models/mlp-test")).Status.ShouldBe(HttpStatusCode.Unauthorized);

        var readOnly = await reader.InferAsync("mlp-test", request);
        readOnly.Status.ShouldBe(HttpStatusCode.Forbidden);
        readOnly.Error().ShouldContain("submit");
        (await reader.GetV2Async("/v2/models/mlp-test")).Status.ShouldBe(HttpStatusCode.OK);

        (await anonymous.GetV2Async("/v2/health/live")).Status.ShouldBe(HttpStatusCode.OK);
        (await anonymous.GetV2Async("/v2/health/ready")).Status.ShouldBe(HttpStatusCode.OK);

        // A probe's HEAD needs no key either, as on /alive and /health (it asked for one: 401).
        foreach (var path in new[] { "/v2/health/live", "/v2/health/ready" })
        {
            using var head = await anonymous.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));
            head.StatusCode.ShouldBe(HttpStatusCode.OK, path);
        }
    }

    [Fact]
    public async Task A_v2_job_is_its_tenants_own_even_under_the_same_idempotency_key()
    {
        using var bravo = pipeline.ClientWith(await pipeline.CreateKeyAsync("bravo", "submit", "read"));
        using var alfa = pipeline.ClientWith(await pipeline.CreateKeyAsync("alfa", "submit", "read"));
        var request = V2Scenarios.MlpRequest([4, 3, 2, 1], ""","id":"same-request" """);

        var bravos = await bravo.InferAsync("mlp-test", request, idempotencyKey: "v2-key-1");

        // The retry once the job's ending is recorded: one sent before the recorder has recorded
        // an interactive job is offered again and waits out its wait (reported on issue 17).
        await Retry.Until("the job's ending to be recorded", () => bravo.GetJsonAsync($"/v1/jobs/{bravos.JobId()}/events"), events => events.GetArrayLength() == 2);
        var bravosAgain = await bravo.InferAsync("mlp-test", request, idempotencyKey: "v2-key-1");
        var alfas = await alfa.InferAsync("mlp-test", request, idempotencyKey: "v2-key-1");

        bravos.Status.ShouldBe(HttpStatusCode.OK, bravos.Body.ToString());
        bravosAgain.JobId().ShouldBe(bravos.JobId(), "a retry with the key answers the same job");
        alfas.Status.ShouldBe(HttpStatusCode.OK, alfas.Body.ToString());
        alfas.JobId().ShouldNotBe(bravos.JobId());
        (await alfa.GetAsync($"/v1/jobs/{bravos.JobId()}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await bravo.GetAsync($"/v1/jobs/{bravos.JobId()}")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task The_same_idempotency_key_with_another_body_is_409_in_the_v2_shape()
    {
        using var client = pipeline.ClientWith(await pipeline.CreateKeyAsync("charlie", "submit"));
        (await client.InferAsync("mlp-test", V2Scenarios.MlpRequest([1, 1, 1, 1]), idempotencyKey: "v2-key-2")).Status.ShouldBe(HttpStatusCode.OK);

        var conflict = await client.InferAsync("mlp-test", V2Scenarios.MlpRequest([2, 2, 2, 2]), idempotencyKey: "v2-key-2");

        conflict.Status.ShouldBe(HttpStatusCode.Conflict);
        conflict.Error().ShouldContain("Idempotency-Key");
    }

    [Fact]
    public async Task The_same_idempotency_key_on_another_versions_path_is_409_not_the_first_versions_answer()
    {
        using var client = pipeline.ClientWith(await pipeline.CreateKeyAsync("charlie", "submit", "read"));
        var version = (await client.GetV2Async("/v2/models/mlp-test")).Body.GetProperty("versions")[0].GetString();
        var body = V2Scenarios.MlpRequest([3, 3, 3, 3]);
        (await client.PostV2Async($"/v2/models/mlp-test/versions/{version}/infer", body, "v2-key-3")).Status.ShouldBe(HttpStatusCode.OK);

        (await client.PostV2Async($"/v2/models/mlp-test/versions/{version}/infer", body, "v2-key-3")).Status.ShouldBe(HttpStatusCode.OK, "the same request again");
        var unpinned = await client.InferAsync("mlp-test", body, idempotencyKey: "v2-key-3");

        unpinned.Status.ShouldBe(HttpStatusCode.Conflict);
        unpinned.Error().ShouldContain("Idempotency-Key");
    }
}
