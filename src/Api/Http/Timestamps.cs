using System.Globalization;

namespace CqrsInference.Api.Http;

/// <summary>
/// Every timestamp the API reads (deadline, asOf, from, to): ISO 8601 with a time zone (<c>Z</c> or
/// <c>±hh:mm</c>), converted to UTC. One without a zone is refused: its meaning would depend on the
/// server's clock settings.
/// </summary>
internal static class Timestamps
{
    public const string Rule = "an ISO 8601 timestamp with a time zone, e.g. 2026-11-25T18:00:00Z or 2026-11-25T19:00:00+01:00";

    private static readonly string[] Formats =
    [
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFzzz",
        "yyyy-MM-dd'T'HH:mm'Z'", "yyyy-MM-dd'T'HH:mmzzz",
    ];

    /// <summary>What a range's ends may be: analytics widen them by hours and days, so the calendar's own ends are out.</summary>
    public const string RangeRule = "between 1970-01-01 and 9998-12-31 (UTC)";

    /// <summary>Whether <paramref name="at"/> is <see cref="RangeRule"/>.</summary>
    public static bool InRange(DateTimeOffset at) => at.Year is >= 1970 and <= 9998;

    public static bool TryParseUtc(string? text, out DateTimeOffset utc)
    {
        utc = default;
        if (string.IsNullOrEmpty(text) || text.Length > 40)
        {
            return false;
        }

        // In a query string an unescaped '+' arrives as a space: "…T19:00:00 01:00".
        if (text.Length > 6 && text[^6] == ' ' && text[^3] == ':')
        {
            text = string.Concat(text.AsSpan(0, text.Length - 6), "+", text.AsSpan(text.Length - 5));
        }

        text = Normalized(text);
        if (!DateTimeOffset.TryParseExact(text, Formats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
        {
            return false;
        }

        utc = parsed.ToUniversalTime();
        return true;
    }

    /// <summary>
    /// What RFC 3339 also allows, in the form the formats read: a lowercase <c>t</c> or <c>z</c>, and
    /// more than seven fractional digits (Go and Java write nanoseconds), cut to the 100 ns a
    /// timestamp holds.
    /// </summary>
    private static string Normalized(string text)
    {
        if (text.Length > 10 && text[10] == 't')
        {
            text = string.Concat(text.AsSpan(0, 10), "T", text.AsSpan(11));
        }

        if (text[^1] == 'z')
        {
            text = string.Concat(text.AsSpan(0, text.Length - 1), "Z");
        }

        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot < 0)
        {
            return text;
        }

        var end = dot + 1;
        while (end < text.Length && char.IsAsciiDigit(text[end]))
        {
            end++;
        }

        return end - dot - 1 > 7 ? string.Concat(text.AsSpan(0, dot + 8), text.AsSpan(end)) : text;
    }
}
