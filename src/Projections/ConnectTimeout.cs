using System.Data.Common;
using Npgsql;

namespace CqrsInference.Projections;

/// <summary>
/// How long the service's connections wait to be established unless the connection string says:
/// <see cref="Default"/>, not the driver's 15 s. A PostgreSQL on the same network answers a connect
/// in milliseconds; one that hangs (stopped, behind a network that drops packets) kept every read
/// that needed a new connection waiting 15 s for its 503. Commands keep the driver's 30 s: an
/// analytics query or a replay may take long on a healthy server.
/// </summary>
public static class ConnectTimeout
{
    public const int Default = 5;

    /// <summary><paramref name="connectionString"/> with <see cref="Default"/> seconds to connect, unless it sets its own.</summary>
    public static string AddTo(string connectionString)
    {
        // Only the keys the string holds (Npgsql's own builder answers for every keyword it knows).
        return new DbConnectionStringBuilder { ConnectionString = connectionString }.ContainsKey("Timeout")
            ? connectionString
            : new NpgsqlConnectionStringBuilder(connectionString) { Timeout = Default }.ConnectionString;
    }
}
