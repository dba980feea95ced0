using System.Net;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Streaming;

/// <summary>
/// <c>GET /v1/jobs/{id}/stream</c> read with .NET's own SSE parser, as any client would. No processor
/// here: a job stays queued until the test cancels it, so what each stream sends is exact.
/// </summary>
public sealed class JobStreamTests(PipelineWithoutProcessors pipeline) : IClassFixture<PipelineWithoutProcessors>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task Every_event_carries_the_id_it_is_recorded_under_live_as_well()
    {
        var job = await QueuedAndRecordedAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var stream = await OpenAsync(job, lastEventId: null, timeout.Token);
        await using var items = ReadAsync(stream, timeout.Token).GetAsyncEnumerator(timeout.Token);
        (await items.MoveNextAsync()).ShouldBeTrue();
        var first = items.Current;

        (await _client.DeleteAsync($"/v1/jobs/{job}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        var rest = new List<SseItem<string>>();
        while (await items.MoveNextAsync())
        {
            rest.Add(items.Current);
        }

        var recorded = await RecordedIdsAsync(job, count: 2);
        (first.EventType, first.EventId).ShouldBe(("status", recorded[0]));
        rest.Select(i => (i.EventType, i.EventId)).ShouldBe([("v1.job_cancelled", recorded[1]), ("status", recorded[1])]);
        JsonDocument.Parse(rest[^1].Data).RootElement.GetProperty("status").GetString().ShouldBe("cancelled");
    }

    [Fact]
    public async Task A_stream_resumed_with_Last_Event_ID_sends_what_it_missed_and_nothing_it_had()
    {
        var job = await QueuedAndRecordedAsync();
        var first = (await ItemsAsync(job, lastEventId: null, until: 1)).Single();
        var submitted = (await RecordedIdsAsync(job, count: 1))[0];
        (first.EventType, first.EventId).ShouldBe(("status", submitted));

        // The job ends while the client is away.
        (await _client.DeleteAsync($"/v1/jobs/{job}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        var cancelled = (await RecordedIdsAsync(job, count: 2))[1];

        var resumed = await ItemsAsync(job, lastEventId: submitted);
        resumed.Select(i => (i.EventType, i.EventId)).ShouldBe([("v1.job_cancelled", cancelled), ("status", cancelled)]);

        // Resumed after its last event, the stream sends the status once more and ends.
        var again = await ItemsAsync(job, lastEventId: cancelled);
        again.Select(i => (i.EventType, i.EventId)).ShouldBe([("status", cancelled)]);
        JsonDocument.Parse(again[0].Data).RootElement.GetProperty("status").GetString().ShouldBe("cancelled");
    }

    [Fact]
    public async Task A_Last_Event_ID_that_is_not_an_event_id_is_refused()
    {
        var job = await QueuedAndRecordedAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{job}/stream");
        request.Headers.Add("Last-Event-ID", "42");

        using var response = await _client.SendAsync(request);

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").GetProperty("Last-Event-ID")[0].GetString()!.ShouldContain("UUID");
        (await _client.DeleteAsync($"/v1/jobs/{job}")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    /// <summary>A queued mlp-test job whose submission is recorded (so a stream starts from it).</summary>
    private async Task<Guid> QueuedAndRecordedAsync()
    {
        var job = await _client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        job.Status.ShouldBe(HttpStatusCode.Accepted);
        await RecordedIdsAsync(job.Id, count: 1);
        return job.Id;
    }

    private async Task<List<string>> RecordedIdsAsync(Guid job, int count)
    {
        var events = await Retry.Until($"{count} events of job {job} to be recorded",
            async () => await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job}/events"), e => e.GetArrayLength() >= count);
        return events.EnumerateArray().Select(e => e.GetProperty("id").GetString()!).ToList();
    }

    /// <summary>A stream's events until it ends (or the first <paramref name="until"/>), pings left out.</summary>
    private async Task<List<SseItem<string>>> ItemsAsync(Guid job, string? lastEventId, int until = int.MaxValue)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var stream = await OpenAsync(job, lastEventId, timeout.Token);
        var items = new List<SseItem<string>>();
        await foreach (var item in ReadAsync(stream, timeout.Token))
        {
            items.Add(item);
            if (items.Count == until)
            {
                break;
            }
        }

        return items;
    }

    private async Task<HttpResponseMessage> OpenAsync(Guid job, string? lastEventId, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{job}/stream");
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }

        var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("text/event-stream");
        return response;
    }

    private static async IAsyncEnumerable<SseItem<string>> ReadAsync(HttpResponseMessage response, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        await foreach (var item in SseParser.Create(body).EnumerateAsync(ct))
        {
            if (item.EventType != "ping")
            {
                yield return item;
            }
        }
    }
}
