namespace CqrsInference.Commands;

/// <summary>What is wrong with a request, by field (the <c>errors</c> of a 422 problem): every fault, not just the first.</summary>
public sealed class FieldErrors
{
    /// <summary>
    /// The most faults one answer lists (fields, and messages per field); the rest are counted under
    /// <see cref="Whole"/>. Unbounded, a body of 100,000 unknown fields answered 16 MB (and a batch
    /// line stored as much).
    /// </summary>
    public const int MaxListed = 50;

    /// <summary>The key of faults of the request as a whole (as System.Text.Json names the root).</summary>
    public const string Whole = "$";

    private readonly Dictionary<string, string[]> _errors = new(StringComparer.Ordinal);
    private int _unlisted;

    public int Count => _errors.Count + _unlisted;

    /// <summary>A fault of <paramref name="field"/> (a name the caller chose, such as a metadata key, is cut short: <see cref="Shown"/>).</summary>
    public void Add(string field, string message)
    {
        field = Shown.Cut(field, 2 * Shown.MaxLength);
        if (_errors.TryGetValue(field, out var existing) ? existing.Length >= MaxListed : _errors.Count >= MaxListed)
        {
            _unlisted++;
            return;
        }

        _errors[field] = existing is null ? [message] : [.. existing, message];
    }

    /// <summary>Another request's errors under <paramref name="prefix"/>.<c>field</c> (a bulk's job), what it did not list counted here.</summary>
    public void Merge(string prefix, FieldErrors other)
    {
        foreach (var (field, messages) in other._errors)
        {
            foreach (var message in messages)
            {
                Add($"{prefix}.{field}", message);
            }
        }

        _unlisted += other._unlisted;
    }

    /// <summary>The errors under <paramref name="prefix"/>.<c>field</c>, for a nested object.</summary>
    public FieldErrors.Scope Under(string prefix) => new(this, prefix);

    public Dictionary<string, string[]> ToDictionary()
    {
        var errors = new Dictionary<string, string[]>(_errors, StringComparer.Ordinal);
        if (_unlisted > 0)
        {
            var more = $"{_unlisted} more {(_unlisted == 1 ? "fault" : "faults")} not listed: an answer lists at most {MaxListed}.";
            errors[Whole] = errors.TryGetValue(Whole, out var whole) ? [.. whole, more] : [more];
        }

        return errors;
    }

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
