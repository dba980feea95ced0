namespace CqrsInference.Commands;

/// <summary>What is wrong with a request, by field (the <c>errors</c> of a 422 problem): every fault, not just the first.</summary>
public sealed class FieldErrors
{
    private readonly Dictionary<string, string[]> _errors = new(StringComparer.Ordinal);

    public int Count => _errors.Count;

    /// <summary>A fault of <paramref name="field"/> (a name the caller chose, such as a metadata key, is cut short: <see cref="Shown"/>).</summary>
    public void Add(string field, string message)
    {
        field = Shown.Cut(field, 2 * Shown.MaxLength);
        _errors[field] = _errors.TryGetValue(field, out var existing) ? [.. existing, message] : [message];
    }

    /// <summary>The errors under <paramref name="prefix"/>.<c>field</c>, for a nested object.</summary>
    public FieldErrors.Scope Under(string prefix) => new(this, prefix);

    public Dictionary<string, string[]> ToDictionary() => new(_errors, StringComparer.Ordinal);

    /// <summary>A view that prefixes field names and remembers whether anything was added through it.</summary>
    public sealed class Scope(FieldErrors errors, string prefix)
    {
        public bool Any { get; private set; }

        public void Add(string field, string message)
        {
            Any = true;
            errors.Add(field.Length == 0 ? prefix : $"{prefix}.{field}", message);
        }
    }
}
