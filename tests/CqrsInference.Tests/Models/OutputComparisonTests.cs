using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using Shouldly;
using Xunit;

namespace CqrsInference.Tests.Models;

/// <summary>The rules that judge two answers the same, for shadow runs and backtests (pure logic).</summary>
public sealed class OutputComparisonTests
{
    private static Tensor T(string name, string datatype, string json, params long[] shape) =>
        new(name, datatype, shape.Length == 0 ? [1] : shape, JsonDocument.Parse(json).RootElement.Clone());

    [Fact]
    public void Text_is_compared_exactly_and_numbers_within_the_default_tolerance()
    {
        var reference = new[] { T("text", "BYTES", "[\"hello\"]"), T("confidence", "FP32", "[0.91234]") };

        var same = OutputComparison.Compare(reference, [T("text", "BYTES", "[\"hello\"]"), T("confidence", "FP32", "[0.912345]")]);
        OutputComparison.Identical(same).ShouldBeTrue();

        var other = OutputComparison.Compare(reference, [T("text", "BYTES", "[\"hallo\"]"), T("confidence", "FP32", "[0.95]")]);
        other.Select(a => a.Same).ShouldBe([false, false]);
        other[0].Difference.ShouldBe("element 0: \"hallo\", expected \"hello\"");
    }

    [Fact]
    public void A_tolerance_is_absolute_or_relative_whichever_is_looser()
    {
        var rules = new Dictionary<string, OutputRule> { ["y"] = new() { Rule = OutputRule.WithinTolerance, Tolerance = 0.01 } };
        var reference = new[] { T("y", "FP32", "[1000.0, 0.001]", 2) };

        OutputComparison.Identical(OutputComparison.Compare(reference, [T("y", "FP32", "[1009.0, 0.009]", 2)], rules)).ShouldBeTrue();
        OutputComparison.Compare(reference, [T("y", "FP32", "[1011.0, 0.001]", 2)], rules)[0].Difference.ShouldBe("element 0: 1011.0, expected 1000.0");
    }

    [Fact]
    public void A_threshold_rule_asks_only_for_the_same_side()
    {
        var rules = new Dictionary<string, OutputRule> { ["p"] = new() { Rule = OutputRule.SameSideOfThreshold, Threshold = 0.5 } };
        var reference = new[] { T("p", "FP32", "[[0.9]]", 1, 1) };

        OutputComparison.Identical(OutputComparison.Compare(reference, [T("p", "FP32", "[[0.51]]", 1, 1)], rules)).ShouldBeTrue();
        OutputComparison.Identical(OutputComparison.Compare(reference, [T("p", "FP32", "[[0.49]]", 1, 1)], rules)).ShouldBeFalse();
    }

    [Fact]
    public void A_missing_output_or_another_shape_or_datatype_differs()
    {
        var reference = new[] { T("y", "FP32", "[1, 2]", 2) };

        OutputComparison.Compare(reference, [])[0].Difference.ShouldBe("missing from the candidate's answer");
        OutputComparison.Compare(reference, [T("y", "FP32", "[1, 2, 3]", 3)])[0].Difference.ShouldBe("shape [3], expected [2]");
        OutputComparison.Compare(reference, [T("y", "FP64", "[1, 2]", 2)])[0].Difference.ShouldBe("datatype FP64, expected FP32");
    }

    [Theory]
    [InlineData("exact", null, null, null)]
    [InlineData("tolerance", null, null, "a 'tolerance' rule needs a 'tolerance' of 0 or more")]
    [InlineData("tolerance", -1.0, null, "a 'tolerance' rule needs a 'tolerance' of 0 or more")]
    [InlineData("threshold", null, null, "a 'threshold' rule needs a finite 'threshold'")]
    [InlineData("fuzzy", null, null, "the rule 'fuzzy' is unknown; the rules are exact, tolerance, threshold")]
    public void A_rule_the_manifest_gives_is_checked(string rule, double? tolerance, double? threshold, string? problem) =>
        new OutputRule { Rule = rule, Tolerance = tolerance, Threshold = threshold }.Problem.ShouldBe(problem);
}
