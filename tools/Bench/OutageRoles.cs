using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace CqrsInference.Bench;

/// <summary>
/// How long each role could not work during the outage bench. Measured from outside, from the work
/// it did while the load ran: the longest gap between jobs completed (the processor's
/// <c>completedAt</c>), between events recorded (the recorders: each event's timestamp is the
/// moment it was written to PostgreSQL) and between webhooks delivered (every tenth job names one,
/// called on a listener of the bench's own). Beside that, each role's own account at
/// <c>/metrics</c> (<c>cqrsi_role_longest_outage_seconds</c>: from its first failure to its next
/// success, for the roles that tried to work during the outage).
/// </summary>
internal sealed class OutageRoles : IDisposable
{
    private const int WebhookEvery = 10;
    private readonly HttpListener _listener = new();
    private readonly ConcurrentBag<DateTimeOffset> _delivered = [];
    private readonly ConcurrentBag<DateTimeOffset> _recorded = [];
    private readonly ConcurrentBag<DateTimeOffset> _completed = [];
    private readonly int _port;
    private int _webhookJobs;

    public OutageRoles()
    {
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            _port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        _listener.Prefixes.Add(WebhookUrl);
        _listener.Start();
        _ = Task.Run(ServeAsync);
    }

    private string WebhookUrl => $"http://127.0.0.1:{_port}/hooks/";

    /// <summary>The application's settings for the bench's webhooks (a signing key, the listener allowed).</summary>
    public IReadOnlyDictionary<string, string> Settings => new Dictionary<string, string>
    {
        ["Webhooks__SigningKey"] = "outage-bench-signing-key",
        ["Webhooks__AllowedInsecureHosts__0"] = $"127.0.0.1:{_port}",
    };

    /// <summary>Job <paramref name="index"/>'s body: every tenth names the bench's webhook.</summary>
    public string Body(int index) => index % WebhookEvery == 0
        ? Measures.MlpBody(index)[..^1] + $",\"webhook\":\"{WebhookUrl}\"}}"
        : Measures.MlpBody(index);

    /// <summary>An accepted job's recorded history: when each event was recorded, and when it completed.</summary>
    public void Observe(int index, JsonElement[] events)
    {
        if (index % WebhookEvery == 0)
        {
            Interlocked.Increment(ref _webhookJobs);
        }

        foreach (var e in events)
        {
            _recorded.Add(e.GetProperty("timestamp").GetDateTimeOffset());
            if (e.GetProperty("type").GetString() == "v1.job_succeeded" && e.GetProperty("data").TryGetProperty("completedAt", out var at))
            {
                _completed.Add(at.GetDateTimeOffset());
            }
        }
    }

    /// <summary>The report's rows: each role's longest gap, its own account, and the longest of all.</summary>
    public async Task<List<(string What, string Value)>> ReportAsync(HttpClient http)
    {
        // The last webhooks are called once their jobs are recorded: wait for them (a minute at most).
        var until = Stopwatch.GetTimestamp() + 60 * Stopwatch.Frequency;
        while (_delivered.Count < _webhookJobs && Stopwatch.GetTimestamp() < until)
        {
            await Task.Delay(200);
        }

        var gaps = new List<(string Role, double Seconds)>
        {
            ("processor (between jobs completed)", LongestGap(_completed)),
            ("recorders (between events recorded)", LongestGap(_recorded)),
            ("webhook dispatcher (between webhooks delivered)", LongestGap(_delivered)),
        };
        gaps.AddRange(await OwnAccountsAsync(http));
        var rows = gaps.Select(g => ($"longest time unavailable: {g.Role}", $"{g.Seconds:F1} s")).ToList();
        rows.Add(("webhooks delivered / owed", $"{_delivered.Count} / {_webhookJobs}"));
        rows.Add(("**longest time any role was unavailable**", $"**{gaps.Max(g => g.Seconds):F1} s**"));
        return rows;
    }

    public void Dispose() => _listener.Close();

    /// <summary>Each role's own account (<c>cqrsi_role_longest_outage_seconds{role=…}</c> at /metrics), roles that were never unavailable left out.</summary>
    private static async Task<List<(string Role, double Seconds)>> OwnAccountsAsync(HttpClient http)
    {
        const string metric = "cqrsi_role_longest_outage_seconds{";
        var accounts = new List<(string, double)>();
        var text = await http.GetStringAsync("/metrics");
        foreach (var line in text.Split('\n').Where(l => l.StartsWith(metric, StringComparison.Ordinal)))
        {
            var role = line[(line.IndexOf("role=\"", StringComparison.Ordinal) + 6)..];
            var seconds = double.Parse(line[(line.LastIndexOf('}') + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            if (seconds > 0)
            {
                accounts.Add(($"{role[..role.IndexOf('"')]} (its own account: first failure to next success)", seconds));
            }
        }

        return accounts;
    }

    private static double LongestGap(IEnumerable<DateTimeOffset> moments)
    {
        var times = moments.Order().ToList();
        return times.Zip(times.Skip(1), (a, b) => (b - a).TotalSeconds).DefaultIfEmpty(0).Max();
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            try
            {
                var context = await _listener.GetContextAsync();
                _delivered.Add(DateTimeOffset.UtcNow);
                context.Response.StatusCode = 200;
                context.Response.Close();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return;
            }
        }
    }
}
