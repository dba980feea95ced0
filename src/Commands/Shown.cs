namespace CqrsInference.Commands;

/// <summary>
/// The caller's text quoted back in an answer, cut short: a name, a value or a field can be as long
/// as the body allows (megabytes), and an error must name it, not echo it (twice: as the field and
/// in the message).
/// </summary>
public static class Shown
{
    /// <summary>How much of a quoted text an answer keeps.</summary>
    public const int MaxLength = 100;

    public static string Cut(string text, int max = MaxLength) => text.Length <= max ? text : string.Concat(text.AsSpan(0, max), "…");
}
