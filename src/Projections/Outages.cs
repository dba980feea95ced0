using NATS.Client.Core;
using Npgsql;

namespace CqrsInference.Projections;

/// <summary>What an exception says about the servers this process depends on.</summary>
public static class Outages
{
    /// <summary>
    /// Whether <paramref name="exception"/> (or one it wraps: Marten wraps Npgsql's) says NATS or
    /// PostgreSQL could not be reached or did not answer in time, rather than that the request or
    /// the code was wrong.
    /// </summary>
    public static bool IsOutage(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is NatsException or TimeoutException or System.Net.Sockets.SocketException
                || e is NpgsqlException { IsTransient: true } || e is PostgresException { SqlState: "57P01" or "57P02" or "57P03" or "53300" })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// What <paramref name="ask"/> answers within <paramref name="within"/>, or why it did not: a
    /// server that hangs instead of refusing (SIGSTOP, a network dropping packets) would otherwise hold
    /// the caller for the driver's timeouts. The call is cancelled at the bound, and the answer does
    /// not wait for the driver to notice. An outage (<see cref="IsOutage"/>) or the bound is
    /// <see cref="BoundedAnswer{T}.Unanswered"/>, for a caller that has another answer; the caller's own
    /// cancellation and any other fault are thrown.
    /// </summary>
    public static async Task<BoundedAnswer<T>> AskWithinAsync<T>(Func<CancellationToken, Task<T>> ask, TimeSpan within, CancellationToken ct)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(within);
        try
        {
            return new BoundedAnswer<T>(await ask(bounded.Token).WaitAsync(bounded.Token), null);
        }
        catch (Exception e) when (!ct.IsCancellationRequested && (IsOutage(e) || (e is OperationCanceledException && bounded.IsCancellationRequested)))
        {
            return new BoundedAnswer<T>(default, e is OperationCanceledException
                ? $"no answer within {within.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} s"
                : e.GetBaseException().Message);
        }
    }
}

/// <summary>A store's answer (<see cref="Value"/>, which may be null), or why there was none (<see cref="Unanswered"/>).</summary>
public readonly record struct BoundedAnswer<T>(T? Value, string? Unanswered)
{
    public bool Answered => Unanswered is null;
}
