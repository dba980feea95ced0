using System.Net;
using System.Net.Sockets;
using System.Text;
using CqrsInference.Cli;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Cli;

/// <summary>
/// The CLI against canned answers (an <see cref="HttpListener"/> that answers one request): what the
/// API may send that the pipeline cannot be made to send at will, such as keep-alives, a stream cut
/// short, or a page of jobs with a cursor.
/// </summary>
public sealed class CliCannedAnswerTests
{
    private static readonly Guid Job = Guid.NewGuid();

    private static string Status(string status, string id) =>
        $"id: {id}\nevent: status\ndata: {{\"id\":\"{Job}\",\"status\":\"{status}\",\"attempts\":1}}\n\n";

    [Fact]
    public async Task Watch_skips_keep_alives_and_writes_each_event_with_its_id()
    {
        var stream = Status("queued", "e1") + ": a comment\n\nevent: ping\ndata: null\n\n"
            + $"id: e2\nevent: v1.job_succeeded\ndata: {{\"jobId\":\"{Job}\"}}\n\n" + "event: ping\n\n" + Status("succeeded", "e2");

        var run = await WatchAsync(stream, "--output", "json");

        run.Code.ShouldBe(ExitCodes.Ok, run.ToString());
        var events = run.JsonLines();
        events.Select(e => e.GetProperty("event").GetString()).ShouldBe(["status", "v1.job_succeeded", "status"]);
        events.Select(e => e.GetProperty("id").GetString()).ShouldBe(["e1", "e2", "e2"]);
    }

    [Fact]
    public async Task Watch_exits_2_when_the_stream_ends_before_the_job_does()
    {
        var run = await WatchAsync(Status("running", "e1"));

        run.Code.ShouldBe(ExitCodes.UsageOrTransport, run.ToString());
        run.Out.ShouldContain("running");
        run.Err.ShouldContain($"The event stream of job {Job} ended before the job did (last status: running)");
    }

    [Fact]
    public async Task Watch_exits_2_when_the_stream_goes_silent_instead_of_waiting_for_ever()
    {
        // Headers and one status, then nothing (a proxy holding a dead connection open): watch
        // waited for ever before. The bound is 60 s; this run sets 2 s.
        var port = NatsServerProcess.FreePort();
        using var listener = new HttpListener { Prefixes = { $"http://127.0.0.1:{port}/" } };
        listener.Start();
        var serving = listener.GetContextAsync();
        var running = CliProcess.RunWithAsync(new Dictionary<string, string> { ["CQRSI_STREAM_SILENCE"] = "2" }, $"http://127.0.0.1:{port}", "watch", Job.ToString());
        var context = await serving.WaitAsync(TimeSpan.FromSeconds(30));
        context.Response.ContentType = "text/event-stream";
        context.Response.SendChunked = true;
        await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(Status("running", "e1")));
        await context.Response.OutputStream.FlushAsync();

        var run = await running.WaitAsync(TimeSpan.FromSeconds(30));

        run.Code.ShouldBe(ExitCodes.UsageOrTransport, run.ToString());
        run.Err.ShouldContain("sent nothing for 2 s");
        context.Response.Abort();
    }

    [Fact]
    public async Task Jobs_reads_a_page_of_jobs_as_well_as_a_bare_list()
    {
        var job = $$"""{"id":"{{Job}}","status":"succeeded","model":"mlp-test","region":"local","submittedAt":"2026-01-02T03:04:05Z","attempts":1}""";

        foreach (var body in new[] { $"[{job}]", $$"""{"jobs":[{{job}}],"nextCursor":"abc"}""" })
        {
            var run = await AnswerOnceAsync("application/json", body, "/v1/jobs", "jobs");

            run.Code.ShouldBe(ExitCodes.Ok, run.ToString());
            run.Out.ShouldContain(Job.ToString());
            run.Out.ShouldContain("2026-01-02 03:04:05Z");
        }
    }

    [Theory]
    [InlineData("models")]
    [InlineData("models", "--output", "json")]
    public async Task A_success_that_is_not_json_exits_2_and_prints_nothing_as_the_apis_answer(params string[] arguments)
    {
        var run = await AnswerOnceAsync("text/html", "<html>proxy login</html>", "/v1/models", arguments);

        run.Code.ShouldBe(ExitCodes.UsageOrTransport, run.ToString());
        run.Out.ShouldNotContain("proxy login");
        run.Err.ShouldContain("not JSON (text/html)");
    }

    [Theory]
    [InlineData("http://127.0.0.1:9/prefix", null, "--url must be the API's root address")]
    [InlineData("http://127.0.0.1:9", "key-with-a-newline\n", "--key (or CQRSI_API_KEY) must be the key as created")]
    public async Task A_url_with_a_path_or_a_key_that_cannot_be_sent_is_refused_before_any_call(string url, string? key, string message)
    {
        var run = await CliProcess.RunAsync(url, key is null ? ["models"] : ["models", "--key", key]);

        run.Code.ShouldBe(ExitCodes.UsageOrTransport, run.ToString());
        run.Err.ShouldContain(message);
    }

    [Theory]
    [InlineData("get", "nope", "-o", "json")]
    [InlineData("-o", "json", "jobs", "--limit", "many")]
    [InlineData("usage", "--hours", "lots", "-o", "json")]
    [InlineData("jobs", "--limit", "0", "-o", "json")]
    public async Task A_command_line_that_does_not_parse_is_one_problem_object_with_json_output(params string[] arguments)
    {
        var run = await CliProcess.RunAsync("http://127.0.0.1:9", arguments);

        run.Code.ShouldBe(ExitCodes.UsageOrTransport, run.ToString());
        run.Out.ShouldBeEmpty();
        var problem = System.Text.Json.JsonDocument.Parse(run.Err).RootElement;
        problem.GetProperty("title").GetString().ShouldBe("The command line is not valid");
        problem.GetProperty("detail").GetString().ShouldNotBeNullOrEmpty();
    }

    [Fact]
    public async Task Submit_sends_a_job_again_with_the_same_idempotency_key_when_the_connection_is_lost_and_names_its_line()
    {
        // The first answer never comes (the connection is closed once the request was read: the API
        // may have accepted the job). The job is sent again with the same key, which answers the
        // job the first request made rather than making another.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var file = await JobsFile.WriteAsync(["", """{"model":"mlp-test","inputs":[]}"""]);
        var running = CliProcess.RunAsync($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}", "submit", file.Path, "--lines", "--idempotency-key", "nightly", "-o", "json");

        var cut = await ReadRequestAsync(listener, null);
        var answered = await ReadRequestAsync(listener, $$"""{"id":"{{Job}}","status":"succeeded","servedBy":"queue"}""");
        var run = await running.WaitAsync(TimeSpan.FromSeconds(60));

        cut.ShouldContain("Idempotency-Key: nightly-2\r\n");
        answered.ShouldContain("Idempotency-Key: nightly-2\r\n");
        run.Code.ShouldBe(ExitCodes.Ok, run.ToString());
        var report = run.Json();
        report.GetProperty("idempotencyKey").GetString().ShouldBe("nightly");
        report.GetProperty("retries").GetInt32().ShouldBe(1);
        var job = report.GetProperty("jobs")[0];
        (job.GetProperty("line").GetInt32(), job.GetProperty("id").GetString()).ShouldBe((2, Job.ToString()));
    }

    [Fact]
    public async Task Batch_submit_that_is_not_answered_says_the_command_that_sends_it_again_with_its_key()
    {
        using var file = await JobsFile.WriteAsync(["""{"model":"mlp-test","inputs":[]}"""]);

        var run = await CliProcess.RunAsync("http://127.0.0.1:9", "batch", "submit", file.Path, "--deadline", "30m", "--atomic", "--retries", "0", "--idempotency-key", "b1");

        run.Code.ShouldBe(ExitCodes.UsageOrTransport, run.ToString());
        run.Err.ShouldContain("The batch was not answered (");
        run.Err.ShouldContain($"cqrsi batch submit {file.Path} --deadline 30m --atomic --idempotency-key b1");
    }

    /// <summary>One request's head, read off a plain socket; answered 200 with <paramref name="json"/>, or with the connection closed when none.</summary>
    private static async Task<string> ReadRequestAsync(TcpListener listener, string? json)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = await listener.AcceptTcpClientAsync(timeout.Token);
        var stream = client.GetStream();
        var buffer = new byte[64 * 1024];
        var read = await stream.ReadAsync(buffer, timeout.Token);
        if (json is not null)
        {
            var body = Encoding.UTF8.GetBytes(json);
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"), timeout.Token);
            await stream.WriteAsync(body, timeout.Token);
        }

        return Encoding.UTF8.GetString(buffer, 0, read);
    }

    [Fact]
    public async Task Submit_that_cannot_reach_the_api_reports_every_job_unanswered_and_how_to_send_them_again()
    {
        using var file = await JobsFile.WriteAsync(["""{"model":"mlp-test","inputs":[]}""", """{"model":"mlp-test","inputs":[]}"""]);

        var run = await CliProcess.RunAsync("http://127.0.0.1:9", "submit", file.Path, "--lines", "--retries", "0", "--concurrency", "1", "--idempotency-key", "k1");

        run.Code.ShouldBe(ExitCodes.UsageOrTransport, run.ToString());
        run.Out.ShouldContain("0 succeeded, 2 not succeeded");
        run.Err.ShouldContain("line 1: not answered (");
        run.Out.ShouldContain("unsent");
        run.Out.ShouldContain("stopped");
        run.Err.ShouldContain($"--lines --idempotency-key k1");
    }

    private static Task<CliRun> WatchAsync(string stream, params string[] options) =>
        AnswerOnceAsync("text/event-stream", stream, $"/v1/jobs/{Job}/stream", ["watch", Job.ToString(), .. options]);

    /// <summary>Runs <c>cqrsi</c> against a server that answers its one request, which must be for <paramref name="path"/>, with <paramref name="body"/>.</summary>
    private static async Task<CliRun> AnswerOnceAsync(string contentType, string body, string path, params string[] arguments)
    {
        var port = NatsServerProcess.FreePort();
        using var listener = new HttpListener { Prefixes = { $"http://127.0.0.1:{port}/" } };
        listener.Start();
        var served = ServeAsync(listener, contentType, body);
        var run = await CliProcess.RunAsync($"http://127.0.0.1:{port}", arguments);
        (await served.WaitAsync(TimeSpan.FromSeconds(30))).ShouldBe(path, run.ToString());
        return run;
    }

    private static async Task<string> ServeAsync(HttpListener listener, string contentType, string body)
    {
        var context = await listener.GetContextAsync();
        context.Response.ContentType = contentType;
        await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(body));
        context.Response.Close();
        return context.Request.Url!.AbsolutePath;
    }
}
