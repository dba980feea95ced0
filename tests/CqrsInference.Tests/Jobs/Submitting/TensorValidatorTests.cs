using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Commands.Models;

namespace CqrsInference.Tests.Jobs.Submitting;

public sealed class TensorValidatorTests
{
    private static readonly long[] Batch2 = [2, 4];

    private static ModelDefinition Model(params TensorSpec[] inputs) => new()
    {
        Name = "mlp-test",
        Version = "1",
        Runner = "tensor",
        File = "mlp.onnx",
        Inputs = inputs.Length > 0 ? inputs : [new TensorSpec("x", "FP32", [-1, 4])],
        Outputs = [new TensorSpec("y", "FP32", [-1, 3])],
        Batching = new BatchingSpec(64, 2),
    };

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static Tensor X(long[] shape, string data, string datatype = "FP32", string name = "x") =>
        new(name, datatype, shape, Json(data));

    private static List<(string Field, string Message)> Validate(params Tensor[] inputs) =>
        [.. TensorValidator.Validate(Model(), inputs)];

    private static (string Field, string Message) Single(List<(string Field, string Message)> errors)
    {
        errors.Count.ShouldBe(1, string.Join(" | ", errors));
        return errors[0];
    }

    [Fact]
    public void Valid_input_gives_no_errors()
    {
        Validate(X(Batch2, "[1,2,3,4,5,6,7,8.5]")).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("\"not base64!\"")]
    [InlineData("\"abc\"")]
    [InlineData("\"data:image/png;base64,iVBORw0KGgo=\"")]
    [InlineData("\"iVBORw0KGgo\"")]
    public void A_string_that_is_not_base64_is_refused_where_the_input_declares_base64(string element)
    {
        var image = new TensorSpec("image", "BYTES", [1], Encoding: TensorEncodings.Base64);

        var error = Single([.. TensorValidator.Validate(Model(image), [X([1], $"[{element}]", "BYTES", "image")])]);

        error.Field.ShouldBe("inputs[0].data[0]");
        error.Message.ShouldContain("not valid base64");
    }

    [Theory]
    [InlineData("\"iVBORw0KGgo=\"")]
    [InlineData("\"iVBO Rw0K\\nGgo=\"")]
    [InlineData("\"\"")]
    public void Base64_is_accepted_where_declared_and_any_string_where_not(string element)
    {
        var image = new TensorSpec("image", "BYTES", [1], Encoding: TensorEncodings.Base64);
        TensorValidator.Validate(Model(image), [X([1], $"[{element}]", "BYTES", "image")]).ShouldBeEmpty();

        var text = new TensorSpec("text", "BYTES", [1]);
        TensorValidator.Validate(Model(text), [X([1], "[\"not base64!\"]", "BYTES", "text")]).ShouldBeEmpty();
    }

    [Fact]
    public void Valid_input_at_exactly_the_max_batch_gives_no_errors()
    {
        var data = JsonSerializer.SerializeToElement(new float[64 * 4]);
        Validate(new Tensor("x", "FP32", [64, 4], data)).ShouldBeEmpty();
    }

    [Fact]
    public void Unknown_input_name_is_refused_and_the_known_inputs_are_named()
    {
        var errors = Validate(X(Batch2, "[1,2,3,4,5,6,7,8]"), X(Batch2, "[1,2,3,4,5,6,7,8]", name: "z"));
        var error = Single(errors);
        error.Field.ShouldBe("inputs[1].name");
        error.Message.ShouldContain("'z'");
        error.Message.ShouldContain("its inputs are: x");
    }

    [Fact]
    public void Input_given_twice_is_refused_on_the_second_occurrence()
    {
        var errors = Validate(X(Batch2, "[1,2,3,4,5,6,7,8]"), X(Batch2, "[1,2,3,4,5,6,7,8]"));
        var error = Single(errors);
        error.Field.ShouldBe("inputs[1].name");
        error.Message.ShouldContain("more than once");
    }

    [Fact]
    public void Missing_input_is_reported_with_its_datatype_and_shape()
    {
        var errors = Validate(X(Batch2, "[1,2,3,4,5,6,7,8]", name: "other"));
        errors.Count.ShouldBe(2);
        errors.ShouldContain(e => e.Field == "inputs" && e.Message == "Input 'x' (FP32 [-1,4]) is required.");
    }

    [Fact]
    public void No_inputs_at_all_reports_the_required_input()
    {
        Single(Validate()).ShouldBe(("inputs", "Input 'x' (FP32 [-1,4]) is required."));
    }

    [Fact]
    public void Wrong_datatype_is_refused()
    {
        var error = Single(Validate(X(Batch2, "[1,2,3,4,5,6,7,8]", datatype: "FP64")));
        error.Field.ShouldBe("inputs[0].datatype");
        error.Message.ShouldBe("Input 'x' must be FP32, not FP64.");
    }

    [Fact]
    public void Shape_with_a_wrong_rank_is_refused()
    {
        var error = Single(Validate(X([8], "[1,2,3,4,5,6,7,8]")));
        error.Field.ShouldBe("inputs[0].shape");
        error.Message.ShouldContain("rank 2");
    }

    [Fact]
    public void Shape_with_a_wrong_fixed_dimension_is_refused()
    {
        var error = Single(Validate(X([4, 2], "[1,2,3,4,5,6,7,8]")));
        error.Field.ShouldBe("inputs[0].shape");
        error.Message.ShouldBe("Dimension 1 of input 'x' must be 4 [-1,4], not 2.");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(-5)]
    public void Shape_with_a_zero_or_negative_dimension_is_refused(long batch)
    {
        var error = Single(Validate(X([batch, 4], "[]")));
        error.Field.ShouldBe("inputs[0].shape");
        error.Message.ShouldContain($"between 1 and {int.MaxValue}, not {batch}");
    }

    [Fact]
    public void Batch_dimension_above_the_max_batch_is_refused()
    {
        var data = JsonSerializer.SerializeToElement(new float[65 * 4]);
        var error = Single(Validate(new Tensor("x", "FP32", [65, 4], data)));
        error.Field.ShouldBe("inputs[0].shape");
        error.Message.ShouldContain("at most 64, not 65");
    }

    [Theory]
    [InlineData("[1,2,3,4,5,6,7]", 7)]
    [InlineData("[1,2,3,4,5,6,7,8,9]", 9)]
    [InlineData("[]", 0)]
    public void Element_count_not_matching_the_shape_is_refused(string data, int length)
    {
        var error = Single(Validate(X(Batch2, data)));
        error.Field.ShouldBe("inputs[0].data");
        error.Message.ShouldBe($"Input 'x' has shape [2,4], which needs 8 elements, but data holds {length}.");
    }

    [Fact]
    public void Data_that_is_not_an_array_is_refused()
    {
        var error = Single(Validate(X(Batch2, "{\"a\":1}")));
        error.Field.ShouldBe("inputs[0].data");
        error.Message.ShouldContain("must be an array");
    }

    [Theory]
    [InlineData("[1,2,3,\"4\",5,6,7,8]", 3, "must be a number for FP32, not a string")]
    [InlineData("[1,2,3,4,5,6,7,null]", 7, "must be a number for FP32, not null")]
    [InlineData("[true,2,3,4,5,6,7,8]", 0, "must be a number for FP32, not true")]
    [InlineData("[1,2,3,\"NaN\",5,6,7,8]", 3, "must be a number for FP32, not a string")]
    [InlineData("[1,2,3,4,5,1e39,7,8]", 5, "is 1e39, outside FP32's range (±3.4028235E+38)")]
    [InlineData("[1,2,3,4,5,6,-1e39,8]", 6, "is -1e39, outside FP32's range (±3.4028235E+38)")]
    [InlineData("[1,2,3,3.5e38,5,6,7,8]", 3, "is 3.5e38, outside FP32's range (±3.4028235E+38)")]
    [InlineData("[1,2,3,4,5,6,7,1e400]", 7, "is 1e400, outside FP32's range (±3.4028235E+38)")]
    public void Bad_FP32_element_is_refused_naming_the_element_and_the_input(string data, int index, string problem)
    {
        var error = Single(Validate(X(Batch2, data)));
        error.Field.ShouldBe($"inputs[0].data[{index}]");
        error.Message.ShouldBe($"Element {index} of input 'x' {problem}.");
    }

    [Fact]
    public void Float_at_the_edge_of_the_FP32_range_is_accepted()
    {
        // 3.4028235E+38 is float.MaxValue as written; a little above it still rounds to it, not to infinity.
        Validate(X(Batch2, "[3.4e38,-3.4e38,1e-45,0,3.4028235E+38,-3.4028235E+38,3.40282356e38,1e-50]")).ShouldBeEmpty();
    }

    [Fact]
    public void Finite_double_that_narrows_to_infinity_in_FP32_is_refused()
    {
        // Halfway between float.MaxValue and 2^128 rounds up to infinity.
        var error = Single(Validate(X(Batch2, "[1,2,3,4,5,6,7,3.4028236e38]")));
        error.Field.ShouldBe("inputs[0].data[7]");
        error.Message.ShouldContain("outside FP32's range");
    }

    [Fact]
    public void A_very_long_number_is_quoted_cut_short()
    {
        var huge = "9" + new string('0', 400);
        var error = Single(Validate(X(Batch2, $"[1,2,3,4,5,6,7,{huge}]")));
        error.Message.ShouldBe($"Element 7 of input 'x' is {huge[..TensorElements.MaxQuoted]}…, outside FP32's range (±3.4028235E+38).");
    }

    private static ModelDefinition ModelOf(string datatype) => Model(new TensorSpec("x", datatype, [-1, 2]));

    [Theory]
    [InlineData("INT64", "[-9223372036854775808,9223372036854775807]")]
    [InlineData("INT32", "[-2147483648,2147483647]")]
    [InlineData("INT32", "[0,-0]")]
    [InlineData("BYTES", "[\"a\",\"\"]")]
    [InlineData("BOOL", "[true,false]")]
    [InlineData("FP64", "[1e39,-1.7976931348623157e308]")]
    [InlineData("FP32", "[1.5,-0.0]")]
    public void Values_each_datatype_holds_are_accepted(string datatype, string data)
    {
        TensorValidator.Validate(ModelOf(datatype), [new Tensor("x", datatype, [1, 2], Json(data))]).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("INT64", "[1,9223372036854775808]", "is 9223372036854775808, outside INT64's range (-9223372036854775808 to 9223372036854775807)")]
    [InlineData("INT64", "[1,-9223372036854775809]", "is -9223372036854775809, outside INT64's range (-9223372036854775808 to 9223372036854775807)")]
    [InlineData("INT64", "[1,1.5]", "is 1.5, not an integer: INT64 takes whole numbers written without a fraction or exponent")]
    [InlineData("INT64", "[1,\"7\"]", "must be a number for INT64, not a string")]
    [InlineData("INT32", "[1,2147483648]", "is 2147483648, outside INT32's range (-2147483648 to 2147483647)")]
    [InlineData("INT32", "[1,-2147483649]", "is -2147483649, outside INT32's range (-2147483648 to 2147483647)")]
    [InlineData("INT32", "[1,3.0]", "is 3.0, not an integer: INT32 takes whole numbers written without a fraction or exponent")]
    [InlineData("INT32", "[1,1e3]", "is 1e3, not an integer: INT32 takes whole numbers written without a fraction or exponent")]
    [InlineData("INT32", "[1,true]", "must be a number for INT32, not true")]
    [InlineData("BYTES", "[\"a\",2]", "must be a string for BYTES, not a number")]
    [InlineData("BOOL", "[true,1]", "must be true or false for BOOL, not a number")]
    [InlineData("BOOL", "[true,\"false\"]", "must be true or false for BOOL, not a string")]
    [InlineData("FP64", "[1,\"2\"]", "must be a number for FP64, not a string")]
    [InlineData("FP64", "[1,1e309]", "is 1e309, outside FP64's range (±1.7976931348623157E+308)")]
    [InlineData("FP64", "[1,-1e309]", "is -1e309, outside FP64's range (±1.7976931348623157E+308)")]
    public void Values_a_datatype_cannot_hold_are_refused_naming_the_element(string datatype, string data, string problem)
    {
        var errors = TensorValidator.Validate(ModelOf(datatype), [new Tensor("x", datatype, [1, 2], Json(data))]).ToList();
        Single(errors).ShouldBe(("inputs[0].data[1]", $"Element 1 of input 'x' {problem}."));
    }

    [Fact]
    public void Every_datatype_the_api_accepts_has_an_element_rule()
    {
        foreach (var datatype in TensorValidator.Datatypes)
        {
            TensorElements.Problem(datatype, Json("{}")).ShouldNotBeNull().ShouldNotContain("not supported");
        }
    }

    [Fact]
    public void Only_the_first_bad_element_of_an_input_is_reported_but_every_input_is_checked()
    {
        var model = Model(new TensorSpec("a", "FP32", [-1, 2]), new TensorSpec("b", "INT32", [-1, 2]));
        Tensor[] inputs = [new("a", "FP32", [1, 2], Json("[1e39,1e39]")), new("b", "INT32", [1, 2], Json("[0,1.5]"))];

        var errors = TensorValidator.Validate(model, inputs).ToList();

        errors.Select(e => e.Field).ShouldBe(["inputs[0].data[0]", "inputs[1].data[1]"]);
    }

    [Fact]
    public void More_elements_than_the_limit_over_all_inputs_are_refused_before_the_data_is_read()
    {
        var model = Model(new TensorSpec("a", "FP32", [-1, -1]), new TensorSpec("b", "FP32", [-1, -1])) with { Batching = null };
        var half = TensorValidator.MaxElements / 2000;
        Tensor[] inputs =
        [
            new("a", "FP32", [half, 1000], Json("[]")),
            new("b", "FP32", [half, 1001], Json("[]")),
        ];

        var errors = TensorValidator.Validate(model, inputs).ToList();

        // The first input only fails on its data; the second tips the total over the limit and stops validation.
        errors.Count.ShouldBe(2, string.Join(" | ", errors));
        errors[0].Field.ShouldBe("inputs[0].data");
        errors[0].Message.ShouldContain("needs 2000000 elements");
        errors[1].ShouldBe(("inputs[1].data", $"The inputs hold more than {TensorValidator.MaxElements} elements in all."));
    }

    [Fact]
    public void Exactly_the_element_limit_is_not_refused_for_size()
    {
        var model = Model(new TensorSpec("a", "FP32", [-1, -1])) with { Batching = null };
        var errors = TensorValidator.Validate(model, [new Tensor("a", "FP32", [TensorValidator.MaxElements / 1000, 1000], Json("[]"))]).ToList();
        Single(errors).Message.ShouldContain("needs 4000000 elements, but data holds 0");
    }

    [Fact]
    public void Shape_whose_element_count_overflows_is_refused()
    {
        var model = Model(new TensorSpec("x", "FP32", [-1, -1, -1]));
        var errors = TensorValidator.Validate(model, [new Tensor("x", "FP32", [64, 1L << 29, 1L << 29], Json("[]"))]).ToList();
        errors.ShouldNotBeEmpty();
    }
}
