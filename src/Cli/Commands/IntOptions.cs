using System.CommandLine;
using System.Globalization;

namespace CqrsInference.Cli.Commands;

/// <summary>The range check of a whole-number option, for the commands that take one.</summary>
internal static class IntOptions
{
    /// <summary>
    /// Refuses a number outside <paramref name="min"/>..<paramref name="max"/> with <paramref name="message"/>.
    /// A value that is no number is left to the parser, which names it (reading it here threw, and
    /// <c>cqrsi jobs --limit many</c> crashed).
    /// </summary>
    public static Option<int> Within(this Option<int> option, int min, int max, string message)
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && int.TryParse(result.Tokens[^1].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
                && (value < min || value > max))
            {
                result.AddError(message);
            }
        });
        return option;
    }
}
