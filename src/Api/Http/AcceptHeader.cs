using Microsoft.Net.Http.Headers;

namespace CqrsInference.Api.Http;

/// <summary>
/// Content negotiation for the endpoints that answer JSON or, when asked, another type (CSV,
/// NDJSON): the other type is sent only when the <c>Accept</c> header names it with a quality above
/// zero and at least that of JSON. <c>text/csv;q=0</c> means "not CSV", and
/// <c>application/json, text/csv;q=0.5</c> prefers JSON; a wildcard never chooses the other type, so
/// a browser's <c>*/*</c> gets JSON.
/// </summary>
internal static class AcceptHeader
{
    public static bool Prefers(HttpRequest request, string mediaType)
    {
        if (!MediaTypeHeaderValue.TryParseList(request.Headers.Accept, out var accepted) || accepted.Count == 0)
        {
            return false;
        }

        var other = QualityOf(accepted, mediaType, wildcards: false);
        return other > 0 && other >= QualityOf(accepted, "application/json", wildcards: true);
    }

    private static double QualityOf(IList<MediaTypeHeaderValue> accepted, string mediaType, bool wildcards)
    {
        var type = mediaType[..mediaType.IndexOf('/', StringComparison.Ordinal)];
        var best = 0.0;
        foreach (var value in accepted)
        {
            var matches = value.MediaType.Equals(mediaType, StringComparison.OrdinalIgnoreCase)
                || (wildcards && (value.MatchesAllTypes || (value.MatchesAllSubTypes && value.Type.Equals(type, StringComparison.OrdinalIgnoreCase))));
            if (matches)
            {
                best = Math.Max(best, value.Quality ?? 1.0);
            }
        }

        return best;
    }
}
