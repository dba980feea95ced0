using Marten.Exceptions;
using Npgsql;

namespace CqrsInference.Projections;

/// <summary>What an exception from saving a Marten session says about writers racing on one stream.</summary>
public static class ConcurrentWrites
{
    /// <summary>
    /// Whether <paramref name="exception"/> says another writer appended to the stream (or started it)
    /// first: the event version or stream id was taken between reading the stream and saving. The
    /// caller reads again and decides on what the winner left, instead of failing the request.
    /// </summary>
    public static bool LostRace(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is JasperFx.Events.EventStreamUnexpectedMaxEventIdException or ExistingStreamIdCollisionException or JasperFx.ConcurrencyException
                || e is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation, ConstraintName: { } constraint } && constraint.StartsWith("pk_mt_events", StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }
}
