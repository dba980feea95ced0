using System.Globalization;
using Npgsql;

namespace CqrsInference.Projections;

/// <summary>
/// Asks PostgreSQL to check, while a query of this process runs, that the process is still there
/// (<c>client_connection_check_interval</c>, PostgreSQL 14+, a per-session setting sent as a
/// start-up option). Marten's async daemon holds its leadership locks on sessions that spend most
/// of their time in a 60 s <c>pg_sleep</c> watching for a lost connection; without the check, a
/// killed process's sessions, and with them its locks, live on until that sleep ends, and no other
/// process's daemon can lead (the roll-ups stand still) for up to a minute. With it, they end within
/// <see cref="Interval"/> of the process's death. Every session of the process asks for it, the
/// recorders' and the audit runs' lock sessions included (a replay or verify killed in the middle of
/// a long query no longer keeps its lock until the query ends). A connection string that sets the check itself
/// keeps its own value. (A host that vanishes without closing its sockets is noticed by TCP
/// keep-alives, the server's <c>tcp_keepalives_*</c>, not by this check.)
/// </summary>
public static class DeadClientCheck
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    private const string Setting = "client_connection_check_interval";

    /// <summary><paramref name="connectionString"/> with the check among its start-up options.</summary>
    public static string AddTo(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (builder.Options?.Contains(Setting, StringComparison.Ordinal) == true)
        {
            return connectionString;
        }

        var check = string.Create(CultureInfo.InvariantCulture, $"-c {Setting}={(int)Interval.TotalMilliseconds}");
        builder.Options = string.IsNullOrWhiteSpace(builder.Options) ? check : $"{builder.Options} {check}";
        return builder.ConnectionString;
    }
}
