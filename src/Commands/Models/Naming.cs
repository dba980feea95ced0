using System.Text.RegularExpressions;

namespace CqrsInference.Commands.Models;

/// <summary>
/// Names that become NATS subject tokens, consumer names, headers and log fields (tenants, regions,
/// models) are kept to a safe alphabet, checked here and nowhere else. Anchored with <c>\z</c>:
/// <c>$</c> would let a trailing newline through.
/// </summary>
public static partial class Naming
{
    public const string TokenPattern = @"\A[a-z0-9][a-z0-9_-]{0,62}\z";

    /// <summary>The rule in words, for error messages.</summary>
    public const string TokenRule = "1 to 63 characters: lower-case letters, digits, '-' and '_', starting with a letter or digit";

    public static bool IsToken(string? value) => value is not null && TokenRegex().IsMatch(value);

    [GeneratedRegex(TokenPattern, RegexOptions.CultureInvariant)]
    private static partial Regex TokenRegex();
}
