using System.Text.Json;
using System.Text.Json.Serialization;
using CqrsInference.Commands.Jobs;

namespace CqrsInference.Commands.Models;

/// <summary>
/// How two answers of one output are judged the same, for shadow runs and backtests: <c>exact</c>
/// (every element equal: text for OCR), <c>tolerance</c> (numbers within
/// <see cref="Tolerance"/>, absolute or relative to the larger magnitude, whichever is looser) or
/// <c>threshold</c> (numbers on the same side of <see cref="Threshold"/>: a VAD's speech / no speech).
/// </summary>
public sealed record OutputRule
{
    public const string Exact = "exact";
    public const string WithinTolerance = "tolerance";
    public const string SameSideOfThreshold = "threshold";

    /// <summary>The tolerance of a numeric output that the manifest gives no rule for.</summary>
    public const double DefaultTolerance = 1e-4;

    public string Rule { get; init; } = Exact;

    public double? Tolerance { get; init; }

    public double? Threshold { get; init; }

    /// <summary>The rule of an output the manifest names none for: exact for text and booleans, a tolerance of 1e-4 for numbers.</summary>
    public static OutputRule DefaultFor(string datatype) =>
        datatype is "BYTES" or "BOOL" ? new OutputRule() : new OutputRule { Rule = WithinTolerance, Tolerance = DefaultTolerance };

    /// <summary>Why this rule cannot be used, or null when it can.</summary>
    [JsonIgnore]
    public string? Problem => Rule switch
    {
        Exact => null,
        WithinTolerance when Tolerance is >= 0 and < double.PositiveInfinity => null,
        WithinTolerance => "a 'tolerance' rule needs a 'tolerance' of 0 or more",
        SameSideOfThreshold when Threshold is { } t && double.IsFinite(t) => null,
        SameSideOfThreshold => "a 'threshold' rule needs a finite 'threshold'",
        _ => $"the rule '{Rule}' is unknown; the rules are {Exact}, {WithinTolerance}, {SameSideOfThreshold}",
    };
}

/// <summary>How one output of two answers compared: the same or not, and where they first differ.</summary>
public sealed record OutputAgreement(string Output, bool Same, string? Difference);

/// <summary>Compares two answers of a model output by output (pure; for shadow runs and backtests).</summary>
public static class OutputComparison
{
    /// <summary>
    /// Compares <paramref name="candidate"/> with <paramref name="reference"/> output by output, in
    /// the reference's order, by the rule <paramref name="rules"/> gives each output (by name), else
    /// <see cref="OutputRule.DefaultFor"/>. An output missing from the candidate, or of another
    /// datatype or shape, differs; an output only the candidate has is ignored.
    /// </summary>
    public static IReadOnlyList<OutputAgreement> Compare(
        IReadOnlyList<Tensor> reference, IReadOnlyList<Tensor> candidate, IReadOnlyDictionary<string, OutputRule>? rules = null)
    {
        var result = new List<OutputAgreement>(reference.Count);
        foreach (var expected in reference)
        {
            var rule = rules is not null && rules.TryGetValue(expected.Name, out var named) ? named : OutputRule.DefaultFor(expected.Datatype);
            var actual = candidate.FirstOrDefault(t => t.Name == expected.Name);
            var difference = actual is null ? "missing from the candidate's answer" : Differs(rule, expected, actual);
            result.Add(new OutputAgreement(expected.Name, difference is null, difference));
        }

        return result;
    }

    /// <summary>Whether every output agrees.</summary>
    public static bool Identical(IReadOnlyList<OutputAgreement> agreements) => agreements.All(a => a.Same);

    private static string? Differs(OutputRule rule, Tensor expected, Tensor actual)
    {
        if (expected.Datatype != actual.Datatype)
        {
            return $"datatype {actual.Datatype}, expected {expected.Datatype}";
        }

        if (!expected.Shape.SequenceEqual(actual.Shape))
        {
            return $"shape [{string.Join(",", actual.Shape)}], expected [{string.Join(",", expected.Shape)}]";
        }

        var want = Flatten(expected.Data);
        var got = Flatten(actual.Data);
        if (want.Count != got.Count)
        {
            return $"{got.Count} elements, expected {want.Count}";
        }

        for (var i = 0; i < want.Count; i++)
        {
            if (!Same(rule, want[i], got[i]))
            {
                return $"element {i}: {got[i].GetRawText()}, expected {want[i].GetRawText()}";
            }
        }

        return null;
    }

    private static bool Same(OutputRule rule, JsonElement expected, JsonElement actual)
    {
        if (rule.Rule == OutputRule.Exact || expected.ValueKind != JsonValueKind.Number || actual.ValueKind != JsonValueKind.Number)
        {
            return JsonElement.DeepEquals(expected, actual);
        }

        var (a, b) = (expected.GetDouble(), actual.GetDouble());
        if (rule.Rule == OutputRule.SameSideOfThreshold)
        {
            var threshold = rule.Threshold ?? 0.5;
            return a >= threshold == b >= threshold;
        }

        var tolerance = rule.Tolerance ?? OutputRule.DefaultTolerance;
        var gap = Math.Abs(a - b);
        return gap <= tolerance || gap <= tolerance * Math.Max(Math.Abs(a), Math.Abs(b));
    }

    private static List<JsonElement> Flatten(JsonElement data)
    {
        var elements = new List<JsonElement>();
        Add(data);
        return elements;

        void Add(JsonElement element)
        {
            if (element.ValueKind != JsonValueKind.Array)
            {
                elements.Add(element);
                return;
            }

            foreach (var item in element.EnumerateArray())
            {
                Add(item);
            }
        }
    }
}
