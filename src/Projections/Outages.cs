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
}
