using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Streaming;

/// <summary>
/// <c>GET /v1/events/stream</c>, the dashboard's live feed, read with .NET's own SSE parser. No
/// processor at first: the jobs stay queued (so their submission is seen) until a test starts one
/// as a child process, and then they run to their ending.
/// </summary>
public sealed class LiveStreamTests(PipelineWithoutProcessors pipeline) : IClassFixture<PipelineWithoutProcessors>
{
    [Fact]
    public async Task A_tenants_stream_carries_its_own_jobs_from_submitted_to_succeeded_and_never_another_tenants_while_the_operators_carries_both()
    {
        using var alfa = await pipeline.TenantClientAsync("live-alfa", "submit", "read");
        using var bravo = await pipeline.TenantClientAsync("live-bravo", "submit", "read");
        await using var alfaStream = await LiveStream.OpenAsync(alfa);
        await using var bravoStream = await LiveStream.OpenAsync(bravo);
        await using var operatorStream = await LiveStream.OpenAsync(pipeline.Operator);

        var alfaJobs = await SubmitAsync(alfa, 3);
        var bravoJobs = await SubmitAsync(bravo, 3);
        await alfaStream.WaitForAsync("alfa's jobs queued", s => alfaJobs.All(j => s.StatusesOf(j).Contains("queued")));
        await operatorStream.WaitForAsync("both tenants' jobs queued", s => alfaJobs.Concat(bravoJobs).All(j => s.StatusesOf(j).Contains("queued")));

        await using var processor = await ProcessorProcess.StartAsync(pipeline.Nats.Url, "live-1", new Dictionary<string, string> { ["Processor:Models:0"] = "mlp-test" });
        await alfaStream.WaitForAsync("alfa's jobs succeeded", s => alfaJobs.All(j => s.StatusesOf(j).LastOrDefault() == "succeeded"));
        await bravoStream.WaitForAsync("bravo's jobs succeeded", s => bravoJobs.All(j => s.StatusesOf(j).LastOrDefault() == "succeeded"));
        await operatorStream.WaitForAsync("every job succeeded, and the processor seen",
            s => alfaJobs.Concat(bravoJobs).All(j => s.StatusesOf(j).LastOrDefault() == "succeeded") && s.Processors.Any(p => p.Contains("live-1", StringComparison.Ordinal)));

        // A few more seconds of each stream: nothing of the other tenant arrives late either.
        await Task.Delay(TimeSpan.FromSeconds(3));
        alfaStream.Changes.Select(c => c.Tenant).Distinct().ShouldBe(["live-alfa"]);
        alfaStream.Changes.Select(c => c.Id).ShouldAllBe(id => alfaJobs.Contains(id));
        bravoStream.Changes.Select(c => c.Tenant).Distinct().ShouldBe(["live-bravo"]);
        bravoStream.Changes.Select(c => c.Id).ShouldAllBe(id => bravoJobs.Contains(id));
        alfaStream.Processors.ShouldBeEmpty("a tenant's key does not see the processors");
        operatorStream.Changes.Select(c => c.Tenant).ShouldContain("live-alfa");
        operatorStream.Changes.Select(c => c.Tenant).ShouldContain("live-bravo");
        foreach (var job in alfaJobs)
        {
            // In the lifecycle's order: queued (submitted), perhaps running, succeeded; never back.
            alfaStream.StatusesOf(job).ShouldBe(alfaStream.StatusesOf(job).OrderBy(s => s switch { "queued" => 0, "running" => 1, _ => 2 }));
            (await alfa.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job}")).GetProperty("status").GetString().ShouldBe("succeeded");
        }

        alfaStream.Errors.ShouldBeEmpty();
        operatorStream.Errors.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_stream_resumed_with_Last_Event_ID_gets_the_changes_it_missed()
    {
        using var client = await pipeline.TenantClientAsync("live-resume", "submit", "read");
        string lastId;
        await using (var first = await LiveStream.OpenAsync(client))
        {
            var seen = await SubmitAsync(client, 1);
            await first.WaitForAsync("the first job queued", s => s.StatusesOf(seen[0]).Contains("queued"));
            lastId = first.LastEventId!;
        }

        var missed = await SubmitAsync(client, 1);
        await using var resumed = await LiveStream.OpenAsync(client, lastId);
        await resumed.WaitForAsync("the job submitted while away", s => s.StatusesOf(missed[0]).Contains("queued"));
        resumed.Hello.GetProperty("resumed").GetBoolean().ShouldBeTrue();
        resumed.Resyncs.ShouldBe(0);
    }

    [Fact]
    public async Task A_stream_resumed_from_a_sequence_the_feed_has_not_reached_is_told_to_resync()
    {
        using var client = await pipeline.TenantClientAsync("live-future", "submit", "read");
        await using var watching = await LiveStream.OpenAsync(client);
        var seen = await SubmitAsync(client, 1);
        await watching.WaitForAsync("the job queued", s => s.StatusesOf(seen[0]).Contains("queued"));

        // Taken as a resume before: no resync, and the changes between the two sequences never came.
        await using var future = await LiveStream.OpenAsync(client, (ulong.Parse(watching.LastEventId!, System.Globalization.CultureInfo.InvariantCulture) + 1_000_000).ToString(System.Globalization.CultureInfo.InvariantCulture));
        await future.WaitForAsync("a resync", s => s.Resyncs > 0);
    }

    [Fact]
    public async Task A_stream_resumed_with_Last_Event_ID_gets_only_its_own_tenants_missed_changes()
    {
        using var alfa = await pipeline.TenantClientAsync("resume-alfa", "submit", "read");
        using var bravo = await pipeline.TenantClientAsync("resume-bravo", "submit", "read");

        // The operator's stream keeps the feed following the log while alfa's is closed.
        await using var watching = await LiveStream.OpenAsync(pipeline.Operator);
        string lastId;
        await using (var first = await LiveStream.OpenAsync(alfa))
        {
            var seen = await SubmitAsync(alfa, 1);
            await first.WaitForAsync("alfa's first job queued", s => s.StatusesOf(seen[0]).Contains("queued"));
            lastId = first.LastEventId!;
        }

        var bravoJobs = await SubmitAsync(bravo, 2);
        var missed = await SubmitAsync(alfa, 1);
        await watching.WaitForAsync("both tenants' jobs in the feed", s => bravoJobs.Concat(missed).All(j => s.StatusesOf(j).Contains("queued")));
        await using var resumed = await LiveStream.OpenAsync(alfa, lastId);
        await resumed.WaitForAsync("alfa's job submitted while away", s => s.StatusesOf(missed[0]).Contains("queued"));
        await Task.Delay(TimeSpan.FromSeconds(1));

        resumed.Changes.Select(c => c.Tenant).Distinct().ShouldBe(["resume-alfa"]);
        resumed.Changes.ShouldNotContain(c => bravoJobs.Contains(c.Id));
    }

    [Fact]
    public async Task The_feed_follows_the_log_only_while_a_stream_is_open()
    {
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;
        async Task<int> FeedConsumersAsync()
        {
            var count = 0;
            await foreach (var consumer in js.ListConsumersAsync(CqrsInference.Messaging.NatsTopology.EventsStream))
            {
                count += consumer.Info.Config.HeadersOnly ? 1 : 0;
            }

            return count;
        }

        using var client = await pipeline.TenantClientAsync("live-lazy", "submit", "read");

        // A stream that opened and closed before: the feed then stops, and starts again for the next.
        await using (var earlier = await LiveStream.OpenAsync(client))
        {
            var seen = (await SubmitAsync(client, 1))[0];
            await earlier.WaitForAsync("a job while the earlier stream was open", s => s.StatusesOf(seen).Contains("queued"));
        }

        // No stream open (or the last one closed longer than the idle stop ago): no consumer, so no cost per event.
        await Retry.Until("no live feed consumer while no stream is open", FeedConsumersAsync, n => n == 0, TimeSpan.FromSeconds(LiveFeedIdleStopSeconds + 15));
        var before = (await SubmitAsync(client, 1))[0];
        await Task.Delay(TimeSpan.FromSeconds(LiveFeedStartMarginSeconds + 1));

        await using var stream = await LiveStream.OpenAsync(client);
        var job = (await SubmitAsync(client, 1))[0];
        await stream.WaitForAsync("a job submitted right after the stream opened", s => s.StatusesOf(job).Contains("queued"));
        (await FeedConsumersAsync()).ShouldBe(1, "one consumer for the open stream");

        // The new stream starts from a little before it opened, not from when the earlier one did (it
        // read from there, replaying this job, when the feed woke before it was told the time).
        stream.Changes.ShouldNotContain(c => c.Id == before, "a change from before the stream opened, past the feed's start margin");
    }

    private const int LiveFeedStartMarginSeconds = 2; // LiveFeed.StartMargin

    private const int LiveFeedIdleStopSeconds = 30; // LiveFeed.IdleStop

    [Fact]
    public async Task A_Last_Event_ID_that_is_not_a_sequence_is_refused()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/events/stream");
        request.Headers.Add("Last-Event-ID", "not-a-number");

        using var response = await pipeline.Operator.SendAsync(request);

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").GetProperty("Last-Event-ID")[0].GetString()!.ShouldContain("whole number");
    }

    private static async Task<List<Guid>> SubmitAsync(HttpClient client, int count)
    {
        var jobs = new List<Guid>();
        for (var i = 0; i < count; i++)
        {
            var job = await client.SubmitAsync(Scenarios.MlpJob([i, 1, 2, 3]));
            job.Status.ShouldBe(HttpStatusCode.Accepted);
            jobs.Add(job.Id);
        }

        return jobs;
    }
}

/// <summary>One open live stream, read in the background into what a test asserts on.</summary>
internal sealed class LiveStream : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<Change> _changes = new();
    private readonly ConcurrentQueue<string> _processors = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private readonly TaskCompletionSource<JsonElement> _hello = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private HttpResponseMessage _response = null!;
    private Task _reading = Task.CompletedTask;
    private int _resyncs;

    public sealed record Change(Guid Id, string? Tenant, string Status, string Event);

    public IReadOnlyList<Change> Changes => [.. _changes];

    public IReadOnlyList<string> Processors => [.. _processors];

    public IReadOnlyList<string> Errors => [.. _errors];

    /// <summary>The stream's first event (set before <see cref="OpenAsync"/> returns).</summary>
    public JsonElement Hello { get; private set; }

    public int Resyncs => _resyncs;

    public string? LastEventId { get; private set; }

    public IReadOnlyList<string> StatusesOf(Guid job) => [.. _changes.Where(c => c.Id == job).Select(c => c.Status)];

    /// <summary>Opens the stream and waits for its <c>hello</c>: from then on, nothing that happens is missed.</summary>
    public static async Task<LiveStream> OpenAsync(HttpClient client, string? lastEventId = null)
    {
        var stream = new LiveStream();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/events/stream");
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }

        stream._response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stream._stop.Token);
        stream._response.StatusCode.ShouldBe(HttpStatusCode.OK);
        stream._response.Content.Headers.ContentType!.MediaType.ShouldBe("text/event-stream");
        stream._reading = stream.ReadAsync();
        stream.Hello = await stream._hello.Task.WaitAsync(TimeSpan.FromSeconds(20));
        return stream;
    }

    public Task WaitForAsync(string reason, Func<LiveStream, bool> condition) =>
        Retry.Until(reason, () => Task.FromResult(this), condition);

    private async Task ReadAsync()
    {
        try
        {
            await using var body = await _response.Content.ReadAsStreamAsync(_stop.Token);
            await foreach (var item in SseParser.Create(body).EnumerateAsync(_stop.Token))
            {
                Take(item);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            _errors.Enqueue(e.ToString());
            _hello.TrySetException(e);
        }
    }

    private void Take(SseItem<string> item)
    {
        switch (item.EventType)
        {
            case "hello":
                _hello.TrySetResult(JsonDocument.Parse(item.Data).RootElement.Clone());
                break;
            case "jobs":
                LastEventId = item.EventId;
                foreach (var c in JsonDocument.Parse(item.Data).RootElement.GetProperty("changes").EnumerateArray())
                {
                    _changes.Enqueue(new Change(c.GetProperty("id").GetGuid(), c.GetProperty("tenant").GetString(), c.GetProperty("status").GetString()!, c.GetProperty("event").GetString()!));
                }

                break;
            case "processors":
                _processors.Enqueue(item.Data);
                break;
            case "resync":
                Interlocked.Increment(ref _resyncs);
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _reading;
        _response.Dispose();
        _stop.Dispose();
    }
}
