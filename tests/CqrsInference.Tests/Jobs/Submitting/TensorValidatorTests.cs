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
    [InlineData("[1,2,3,\"4\",5,6,7,8]", 3)]
    [InlineData("[1,2,3,4,5,6,7,null]", 7)]
    [InlineData("[true,2,3,4,5,6,7,8]", 0)]
    [InlineData("[1,2,3,4,5,1e39,7,8]", 5)]
    [InlineData("[1,2,3,4,5,6,-1e39,8]", 6)]
    public void Non_float_element_for_FP32_is_refused_with_its_index(string data, int index)
    {
        var error = Single(Validate(X(Batch2, data)));
        error.Field.ShouldBe("inputs[0].data");
        error.Message.ShouldBe($"Element {index} of input 'x' is not a valid FP32 value.");
    }

    [Fact]
    public void Float_at_the_edge_of_the_FP32_range_is_accepted()
    {
        Validate(X(Batch2, "[3.4e38,-3.4e38,1e-45,0,1,2,3,4]")).ShouldBeEmpty();
    }

    private static ModelDefinition ModelOf(string datatype) => Model(new TensorSpec("x", datatype, [-1, 2]));

    [Theory]
    [InlineData("INT64", "[1,9223372036854775807]", true)]
    [InlineData("INT64", "[1,1.5]", false)]
    [InlineData("INT64", "[1,9223372036854775808]", false)]
    [InlineData("INT32", "[1,2147483647]", true)]
    [InlineData("INT32", "[1,2147483648]", false)]
    [InlineData("BYTES", "[\"a\",\"b\"]", true)]
    [InlineData("BYTES", "[\"a\",2]", false)]
    [InlineData("BOOL", "[true,false]", true)]
    [InlineData("BOOL", "[true,1]", false)]
    [InlineData("FP64", "[1e39,-2.5]", true)]
    [InlineData("FP64", "[1,\"2\"]", false)]
    public void Elements_are_checked_against_the_datatype(string datatype, string data, bool valid)
    {
        var errors = TensorValidator.Validate(ModelOf(datatype), [new Tensor("x", datatype, [1, 2], Json(data))]).ToList();
        if (valid)
        {
            errors.ShouldBeEmpty();
        }
        else
        {
            Single(errors).ShouldBe(("inputs[0].data", $"Element 1 of input 'x' is not a valid {datatype} value."));
        }
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
