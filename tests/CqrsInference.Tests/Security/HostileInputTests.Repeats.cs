using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;

namespace CqrsInference.Tests.Security;

/// <summary>What is given twice, or given empty: refused with the fault named, never joined or taken as absent.</summary>
public sealed partial class HostileInputTests
{
    [Theory]
    [InlineData("two", new[] { "k-1", "k-2" }, "Send one Idempotency-Key header, not 2.")]
    public async Task An_ambiguous_idempotency_key_is_422_and_submits_nothing(string what, string[] keys, string message)
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        var (events, apiKeys) = await WrittenAsync(client);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/jobs") { Content = new StringContent(Job + "}", Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("Idempotency-Key", keys);
        using var response = await client.SendAsync(request);

        ((int)response.StatusCode).ShouldBe(422, what);
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").GetProperty("Idempotency-Key")[0].GetString().ShouldBe(message);
        (await WrittenAsync(client)).ShouldBe((events, apiKeys), "nothing was written");
    }

    [Theory]
    [InlineData(new[] { "" }, "The Idempotency-Key header is empty; leave it out, or give a key of 1 to 256 characters.")]
    [InlineData(new[] { "  " }, "The Idempotency-Key header is empty; leave it out, or give a key of 1 to 256 characters.")]
    [InlineData(new[] { "a", "b", "c" }, "Send one Idempotency-Key header, not 3.")]
    [InlineData(new[] { "a,b" }, null)]
    [InlineData(new string[0], null)]
    public void An_idempotency_key_header_is_one_value_of_1_to_256_characters(string[] values, string? refusal)
    {
        // An empty header as curl sends it ('Idempotency-Key;'); HttpClient would not send one.
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        if (values.Length > 0)
        {
            http.Request.Headers["Idempotency-Key"] = values;
        }

        var (key, problem) = CqrsInference.Api.Http.IdempotencyKeyHeader.Read(http.Request);

        if (refusal is null)
        {
            problem.ShouldBeNull();
            key.ShouldBe(values.Length == 0 ? null : values[0]);
        }
        else
        {
            key.ShouldBeNull();
            ((Microsoft.AspNetCore.Http.HttpValidationProblemDetails)problem!.ProblemDetails).Errors["Idempotency-Key"].ShouldBe([refusal]);
        }
    }

    [Fact]
    public async Task A_query_parameter_given_twice_and_two_points_of_history_at_once_are_refused_naming_the_fault()
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        var job = await client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        await client.WaitForStatusAsync(job.Id, "succeeded");

        using var twice = await client.GetAsync($"/v1/jobs/{job.Id}?version=1&version=2");
        twice.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await twice.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").GetProperty("version")[0].GetString()
            .ShouldBe("version is given 2 times; give it once.");

        using var both = await client.GetAsync($"/v1/jobs/{job.Id}?version=1&asOf=9999-12-31T00:00:00Z");
        both.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await both.Content.ReadAsStringAsync()).ShouldContain("Give asOf or version, not both");
    }

    [Theory]
    [InlineData("https://example.com:99999/x", "webhook must be an absolute http or https URL: a scheme, a host, and a port (if any) of 1 to 65535.")]
    [InlineData("ftp://example.com/x", "webhook must be an http or https URL, not ftp.")]
    [InlineData("  https://example.com/h\\t", "webhook must not begin or end with white space.")]
    [InlineData("/relative/path", "webhook must be an absolute http or https URL: a scheme, a host, and a port (if any) of 1 to 65535.")]
    public async Task A_webhook_that_cannot_be_called_is_named_by_its_fault(string webhook, string message)
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);

        using var response = await client.PostAsync("/v1/jobs", new StringContent(JobWith("webhook", $"\"{webhook}\""), Encoding.UTF8, "application/json"));

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").GetProperty("webhook")[0].GetString().ShouldBe(message);
    }

    [Theory]
    [InlineData("2027-01-01T00:00:00.123456789Z", "2027-01-01T00:00:00.1234567+00:00")]
    [InlineData("2027-01-01t00:00:00z", "2027-01-01T00:00:00+00:00")]
    [InlineData("2027-01-01T01:00:00.5+01:00", "2027-01-01T00:00:00.5+00:00")]
    public void Timestamps_that_rfc_3339_allows_are_read(string written, string read)
    {
        CqrsInference.Api.Http.Timestamps.TryParseUtc(written, out var at).ShouldBeTrue(written);
        at.Offset.ShouldBe(TimeSpan.Zero);
        at.ShouldBe(DateTimeOffset.Parse(read, System.Globalization.CultureInfo.InvariantCulture));
    }
}
