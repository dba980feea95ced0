using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CqrsInference.Tests.Jobs.Webhooks;

/// <summary>A call as the receiver got it: its answer, the deprecated signature header, the body and every header.</summary>
public sealed record WebhookCall(int Status, string Signature, string Body, DateTimeOffset At, IReadOnlyDictionary<string, string> Headers)
{
    /// <summary>The body's <c>type</c>: <c>job.started</c> or <c>job.completed</c>.</summary>
    public string Type => System.Text.Json.JsonDocument.Parse(Body).RootElement.GetProperty("type").GetString()!;
}

/// <summary>
/// A real HTTP endpoint on 127.0.0.1: it fails the first <c>failures</c> calls, then accepts; or,
/// with <c>redirectTo</c>, answers every call with a 307 to there.
/// </summary>
public sealed class WebhookReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly string? _redirectTo;
    private int _failures;

    public WebhookReceiver(int port, int failures = 0, string? redirectTo = null)
    {
        _failures = failures;
        _redirectTo = redirectTo;
        Url = $"http://127.0.0.1:{port}/hooks/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _ = Task.Run(ServeAsync);
    }

    public string Url { get; }

    public ConcurrentQueue<WebhookCall> Calls { get; } = new();

    public void Dispose() => _listener.Close();

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
            var body = await reader.ReadToEndAsync();
            var status = _redirectTo is not null ? 307 : Interlocked.Decrement(ref _failures) >= 0 ? 500 : 200;
            var headers = context.Request.Headers.AllKeys.OfType<string>().ToDictionary(k => k, k => context.Request.Headers[k]!, StringComparer.OrdinalIgnoreCase);
            Calls.Enqueue(new WebhookCall(status, context.Request.Headers["Cqrsi-Signature"] ?? "", body, DateTimeOffset.UtcNow, headers));
            context.Response.StatusCode = status;
            if (_redirectTo is not null)
            {
                context.Response.RedirectLocation = _redirectTo;
            }

            context.Response.Close();
        }
    }
}

/// <summary>An endpoint on 127.0.0.1 that takes connections and never answers: every call to it hangs until the caller gives up.</summary>
public sealed class BlackHole : IDisposable
{
    private readonly TcpListener _listener;
    private readonly ConcurrentBag<Socket> _held = [];

    public BlackHole(int port)
    {
        _listener = new TcpListener(IPAddress.Loopback, port);
        _listener.Start();
        Url = $"http://127.0.0.1:{port}/hooks/";
        _ = Task.Run(AcceptAsync);
    }

    public string Url { get; }

    /// <summary>Connections taken so far.</summary>
    public int Connections => _held.Count;

    public void Dispose()
    {
        _listener.Stop();
        foreach (var socket in _held)
        {
            socket.Dispose();
        }
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            try
            {
                _held.Add(await _listener.AcceptSocketAsync());
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
        }
    }
}
