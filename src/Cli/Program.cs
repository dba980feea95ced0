using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using CqrsInference.Cli;
using Spectre.Console;

// cqrsi: the command-line client of the CqrsInference API.
if (Console.IsOutputRedirected)
{
    // Tables written to a file or a pipe keep their columns whole.
    AnsiConsole.Profile.Width = int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out var columns) ? columns : 200;
}

var url = new Option<string>("--url") { Description = "API address (or CQRSI_URL)", DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CQRSI_URL") ?? "http://127.0.0.1:8080", Recursive = true };
var key = new Option<string?>("--key") { Description = "API key (or CQRSI_API_KEY)", DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CQRSI_API_KEY"), Recursive = true };
var root = new RootCommand("cqrsi — submit, follow and account for inference jobs") { url, key };

var jobFile = new Argument<FileInfo>("file") { Description = "A job as JSON, or with --lines a file of jobs, one JSON object per line" };
var linesOption = new Option<bool>("--lines") { Description = "The file holds one job per line (JSON lines)" };
var concurrency = new Option<int>("--concurrency") { Description = "Jobs in flight at once", DefaultValueFactory = _ => 16 };
var interactive = new Option<bool>("--interactive")
{
    Description = "Send each job with \"mode\":\"interactive\" (request/reply to a processor, the queue as fallback) and say which path served it",
};
var submit = new Command("submit", "Submit jobs and wait for their results, with progress and a summary") { jobFile, linesOption, concurrency, interactive };
submit.SetAction((parse, ct) => RunAsync(parse, api => SubmitCommand.RunAsync(
    api, parse.GetValue(jobFile)!, parse.GetValue(linesOption), parse.GetValue(concurrency), parse.GetValue(interactive), ct)));

var jobId = new Argument<Guid>("id") { Description = "The job's id" };
var watch = new Command("watch", "Follow one job's events until it ends (Server-Sent Events)") { jobId };
watch.SetAction((parse, ct) => RunAsync(parse, async api =>
{
    using var reader = new StreamReader(await api.StreamAsync($"/v1/jobs/{parse.GetValue(jobId)}/stream", ct));
    string? type = null;
    while (await reader.ReadLineAsync(ct) is { } line)
    {
        if (line.StartsWith("event: ", StringComparison.Ordinal))
        {
            type = line[7..];
        }
        else if (line.StartsWith("data: ", StringComparison.Ordinal) && type is not (null or "ping"))
        {
            var data = JsonDocument.Parse(line[6..]).RootElement;
            var summary = type == "status"
                ? $"status [bold]{data.GetProperty("status").GetString()}[/] attempts {data.GetProperty("attempts").GetInt32()}"
                : Markup.Escape(line[6..]);
            AnsiConsole.MarkupLine($"[grey]{DateTime.Now:HH:mm:ss.fff}[/] [blue]{Markup.Escape(type)}[/] {summary}");
        }
    }

    return 0;
}));

var status = new Option<string?>("--status") { Description = "Only jobs in this status" };
var limit = new Option<int>("--limit") { Description = "How many", DefaultValueFactory = _ => 20 };
var list = new Command("jobs", "List the most recent jobs") { status, limit };
list.SetAction((parse, ct) => RunAsync(parse, async api =>
{
    var query = $"/v1/jobs?limit={parse.GetValue(limit)}" + (parse.GetValue(status) is { } s ? $"&status={s}" : "");
    var (code, body) = await api.GetAsync(query, ct);
    Ensure(code, body);
    var table = new Table().AddColumns("id", "status", "model", "region", "submitted", "attempts", "run ms", "device");
    foreach (var j in body.GetProperty("jobs").EnumerateArray())
    {
        table.AddRow(j.GetProperty("id").GetString()!, j.GetProperty("status").GetString()!, j.GetProperty("model").GetString()!,
            j.GetProperty("region").GetString()!, j.GetProperty("submittedAt").GetDateTimeOffset().ToString("u", CultureInfo.InvariantCulture),
            j.GetProperty("attempts").GetInt32().ToString(CultureInfo.InvariantCulture),
            j.GetProperty("runMs").ValueKind == JsonValueKind.Number ? j.GetProperty("runMs").GetDouble().ToString("F1", CultureInfo.InvariantCulture) : "",
            j.GetProperty("device").GetString() ?? "");
    }

    AnsiConsole.Write(table);
    return 0;
}));

var groupBy = new Option<string>("--group-by") { Description = "model,region,tenant,device", DefaultValueFactory = _ => "model,device" };
var hours = new Option<int>("--hours") { Description = "Look back this many hours", DefaultValueFactory = _ => 24 };
var usage = new Command("usage", "Jobs, device time and cost per hour") { groupBy, hours };
usage.SetAction((parse, ct) => RunAsync(parse, async api =>
{
    var to = DateTimeOffset.UtcNow.AddHours(1);
    var from = DateTimeOffset.UtcNow.AddHours(-parse.GetValue(hours));
    var (code, body) = await api.GetAsync(
        $"/v1/analytics/usage?from={Uri.EscapeDataString(from.ToString("O", CultureInfo.InvariantCulture))}&to={Uri.EscapeDataString(to.ToString("O", CultureInfo.InvariantCulture))}&groupBy={parse.GetValue(groupBy)}", ct);
    Ensure(code, body);
    var table = new Table().AddColumns("hour", "model", "region", "tenant", "device", "submitted", "succeeded", "failed", "busy s", "cost", "run p99 ms");
    foreach (var r in body.EnumerateArray())
    {
        string Text(string name) => r.GetProperty(name).ValueKind switch
        {
            JsonValueKind.Null => "",
            JsonValueKind.String => r.GetProperty(name).GetString()!,
            _ => r.GetProperty(name).GetRawText(),
        };
        table.AddRow(r.GetProperty("bucket").GetDateTimeOffset().ToString("MM-dd HH'h'", CultureInfo.InvariantCulture), Text("model"), Text("region"), Text("tenant"),
            Text("device"), Text("submitted"), Text("succeeded"), Text("failed"), Text("busySeconds"), Text("cost"), Text("runP99Ms"));
    }

    AnsiConsole.Write(table);
    return 0;
}));

var fromSequence = new Option<long>("--from-sequence") { Description = "Start at this global sequence", DefaultValueFactory = _ => 0 };
var follow = new Option<bool>("--follow") { Description = "Keep waiting for new events" };
var tail = new Command("tail", "Print the audit feed, from a sequence, optionally following it") { fromSequence, follow };
var audit = new Command("audit", "The auditors' event feed") { tail };
tail.SetAction((parse, ct) => RunAsync(parse, async api =>
{
    var next = parse.GetValue(fromSequence);
    while (!ct.IsCancellationRequested)
    {
        var (code, body) = await api.GetAsync($"/v1/audit/events?fromSequence={next}&limit=1000", ct);
        Ensure(code, body);
        foreach (var e in body.GetProperty("events").EnumerateArray())
        {
            Console.WriteLine($"{e.GetProperty("sequence").GetInt64(),10} {e.GetProperty("timestamp").GetDateTimeOffset():O} {e.GetProperty("type").GetString(),-24} {e.GetProperty("streamId").GetGuid()} v{e.GetProperty("version").GetInt64()}");
            next = e.GetProperty("sequence").GetInt64() + 1;
        }

        if (body.GetProperty("nextSequence").ValueKind == JsonValueKind.Null)
        {
            if (!parse.GetValue(follow))
            {
                break;
            }

            await Task.Delay(1000, ct);
        }
    }

    return 0;
}));

root.Add(submit);
root.Add(watch);
root.Add(list);
root.Add(usage);
root.Add(audit);
return await root.Parse(args).InvokeAsync();

async Task<int> RunAsync(ParseResult parse, Func<ApiClient, Task<int>> action)
{
    using var api = new ApiClient(parse.GetValue(url)!, parse.GetValue(key));
    try
    {
        return await action(api);
    }
    catch (CliException e)
    {
        AnsiConsole.MarkupLine($"[red]{Markup.Escape(e.Message)}[/]");
        return 2;
    }
    catch (HttpRequestException e)
    {
        AnsiConsole.MarkupLine($"[red]Cannot reach {Markup.Escape(parse.GetValue(url)!)}: {Markup.Escape(e.Message)}[/]");
        return 2;
    }
}

static void Ensure(int code, JsonElement body)
{
    if (code >= 400)
    {
        throw new CliException($"{code}: {(body.ValueKind == JsonValueKind.Object && body.TryGetProperty("detail", out var d) ? d.GetString() : body.ToString())}");
    }
}
