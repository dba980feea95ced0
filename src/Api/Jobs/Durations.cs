using System.Globalization;
using System.Text.RegularExpressions;

namespace CqrsInference.Api.Jobs;

/// <summary>
/// The one way the API reads a duration (<c>?wait=</c>, a submit's <c>timeout</c>): a number of up to
/// six digits with up to three decimals, then <c>ms</c>, <c>s</c>, <c>m</c> or <c>h</c>; a bare number is seconds.
/// Each use bounds it (a wait at most 60 s; a batch's deadline in hours is common).
/// </summary>
internal static partial class Durations
{
    public const string Rule = "a duration such as 500ms, 5s, 1m or 24h (a bare number is seconds)";

    public static bool TryParse(string value, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        var match = Pattern().Match(value);
        if (!match.Success)
        {
            return false;
        }

        var amount = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        duration = match.Groups[2].Value switch
        {
            "ms" => TimeSpan.FromMilliseconds(amount),
            "m" => TimeSpan.FromMinutes(amount),
            "h" => TimeSpan.FromHours(amount),
            _ => TimeSpan.FromSeconds(amount),
        };
        return true;
    }

    [GeneratedRegex(@"^([0-9]{1,6}(?:\.[0-9]{1,3})?)(ms|s|m|h)?$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
