using NATS.Client.Core;

namespace CqrsInference.Messaging;

/// <summary>
/// Follows the NATS connection for a reader of the log on a push consumer. The consumer's
/// server-side state is ephemeral (in the server's memory): a nats-server that restarted has lost
/// it, and NATS.Net's ordered push consumer notices only after two missed idle heartbeats (10 s),
/// which is how long <c>?wait=</c> callers and SSE streams heard nothing after a restart. A reader
/// consumes with <see cref="Token"/>, cancelled whenever the connection opens (again: after it was
/// lost; an opening while the consumer is being made costs one restart more), and starts a new
/// consumer at once from the last sequence it read.
/// </summary>
public sealed class Reconnects : IDisposable
{
    private readonly INatsConnection _nats;
    private readonly CancellationToken _outer;
    private readonly CancellationTokenSource _reading;
    private readonly Action<string>? _lost;

    private Reconnects(INatsConnection nats, CancellationToken ct, Action<string>? lost)
    {
        (_nats, _outer, _lost) = (nats, ct, lost);
        _reading = CancellationTokenSource.CreateLinkedTokenSource(ct);
        nats.ConnectionOpened += OnOpenedAsync;
        nats.ConnectionDisconnected += OnDisconnectedAsync;
    }

    /// <summary>Starts following the connection; <paramref name="lost"/> hears the loss of it, if given.</summary>
    public static Reconnects Follow(INatsConnection nats, CancellationToken ct, Action<string>? lost = null) => new(nats, ct, lost);

    /// <summary>Cancelled when the caller's token is, or when the connection opens again.</summary>
    public CancellationToken Token => _reading.Token;

    /// <summary>Whether <see cref="Token"/> was cancelled by a reconnection (not by the caller).</summary>
    public bool Reconnected => _reading.IsCancellationRequested && !_outer.IsCancellationRequested;

    public void Dispose()
    {
        _nats.ConnectionOpened -= OnOpenedAsync;
        _nats.ConnectionDisconnected -= OnDisconnectedAsync;
        _reading.Dispose();
    }

    private async ValueTask OnOpenedAsync(object? sender, NatsEventArgs args)
    {
        try
        {
            await _reading.CancelAsync();
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile: the reader has stopped already.
        }
    }

    private ValueTask OnDisconnectedAsync(object? sender, NatsEventArgs args)
    {
        _lost?.Invoke($"the connection to NATS was lost ({args.Message})");
        return default;
    }
}
