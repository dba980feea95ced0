using System.Text.RegularExpressions;

namespace CqrsInference.Commands.Models;

/// <summary>Names that become NATS subject tokens (models, regions) are kept to a safe alphabet.</summary>
public static partial class Naming
{
    public const string TokenPattern = "^[a-z0-9][a-z0-9_-]{0,62}$";

    public static bool IsToken(string? value) => value is not null && TokenRegex().IsMatch(value);

    [GeneratedRegex(TokenPattern, RegexOptions.CultureInvariant)]
    private static partial Regex TokenRegex();
}
