using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.JetStream;
using NATS.Net;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// The queue gauges describe the deployment, not a process: of two API processes on the same
/// servers, one exports them; when it dies, the other does. Real processes, since every host in
/// the test process shares the system's meter.
/// </summary>
public sealed class QueueGaugesTests : IAsyncLifetime
{
    private NatsServerProcess _nats = null!;

    public async Task InitializeAsync() => _nats = await NatsServerProcess.StartAsync();

    public async Task DisposeAsync() => await _nats.DisposeAsync();

    [Fact]
    public async Task A_queue_emptied_after_its_counts_were_read_has_no_oldest_job_and_no_outage()
    {
        await using var nats = new NATS.Net.NatsClient(_nats.Url);
        var js = nats.CreateJetStreamContext();
        var stream = await js.CreateStreamAsync(new NATS.Client.JetStream.Models.StreamConfig("GAUGES_RACE", ["race.>"]));
        await js.PublishAsync("race.a", new byte[] { 1 });

        (await Api.Hosting.QueueGauges.OldestAsync(stream, "race.a", CancellationToken.None)).ShouldNotBeNull();
        (await Api.Hosting.QueueGauges.OldestAsync(stream, "race.b", CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task One_api_process_exports_the_queue_gauges_and_another_takes_over_when_it_dies()
    {
        var schema = TestEnvironment.NewSchema();
        await using var first = await StartApiAsync(schema, "api-1");
        await using var second = await StartApiAsync(schema, "api-2");
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TestEnvironment.OperatorKey);

        var exporting = await Retry.Until("one process to export the gauges", () => ExportingAsync(http, first, second), e => e.Count > 0);
        for (var scrape = 0; scrape < 5; scrape++)
        {
            // Every refresh (2 s) for a while: still one, and the same one.
            (await ExportingAsync(http, first, second)).ShouldBe(exporting);
            await Task.Delay(TimeSpan.FromSeconds(1));
        }

        exporting.Count.ShouldBe(1);
        var (leader, other) = exporting[0] == first.Port ? (first, second) : (second, first);
        await leader.Process.KillAsync();

        var after = await Retry.Until("the other process to take over", () => ExportingAsync(http, other), e => e.Count == 1);
        after.ShouldBe([other.Port]);
    }

    private static async Task<List<int>> ExportingAsync(HttpClient http, params ApiProcess[] processes)
    {
        var exporting = new List<int>();
        foreach (var api in processes)
        {
            var metrics = await http.GetStringAsync(new Uri($"http://127.0.0.1:{api.Port}/metrics"));
            if (metrics.Split('\n').Any(l => l.StartsWith("cqrsi_queue_in_flight{", StringComparison.Ordinal)))
            {
                exporting.Add(api.Port);
            }
        }

        return exporting;
    }

    private async Task<ApiProcess> StartApiAsync(string schema, string name)
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var settings = new Dictionary<string, string>
        {
            ["Cqrsi:Roles"] = "api",
            ["Cqrsi:Schema"] = schema,
            ["ConnectionStrings:Postgres"] = TestEnvironment.Postgres,
            ["Urls"] = $"http://127.0.0.1:{port}",
            ["CQRSI_API_KEY"] = TestEnvironment.OperatorKey,
        };
        return new ApiProcess(await ProcessorProcess.StartAsync(_nats.Url, name, settings, readyMarker: "CqrsInference ready"), port);
    }

    private sealed record ApiProcess(ProcessorProcess Process, int Port) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Process.DisposeAsync();
    }
}
