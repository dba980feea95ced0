using System.Text.Json;
using CqrsInference.Api.Jobs;
using CqrsInference.Api.Jobs.Submitting;
using Snapshooter.Xunit;

namespace CqrsInference.Tests.Jobs.Submitting;

public sealed class JobRequestParserTests
{
    // Like the endpoint, parse a clone: flat data is returned as an element of the body's document.
    private static (JobRequest? Request, Dictionary<string, string[]> Errors) Parse(string json) =>
        JobRequestParser.Parse(JsonDocument.Parse(json).RootElement.Clone());

    private static string Body(string shape = "[1,4]", string data = "[1,2,3,4]", string extraTensor = "", string extra = "") =>
        $$"""{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":{{shape}},"data":{{data}}{{extraTensor}}}]{{extra}}}""";

    private static Dictionary<string, string[]> Errors(string json)
    {
        var (request, errors) = Parse(json);
        request.ShouldBeNull();
        errors.ShouldNotBeEmpty();
        return errors;
    }

    [Fact]
    public void At_most_fifty_faults_are_listed_and_the_rest_are_counted()
    {
        var errors = Errors(Body(extra: "," + string.Join(",", Enumerable.Range(0, 200).Select(i => $"\"f{i}\":1"))));

        errors.Count.ShouldBe(Commands.FieldErrors.MaxListed + 1);
        errors.ShouldContainKey("f0");
        errors.ShouldContainKey("f49");
        errors.ShouldNotContainKey("f50");
        errors["$"].ShouldBe(["150 more faults not listed: an answer lists at most 50."]);
    }

    [Fact]
    public void Valid_request_parses_with_flat_data()
    {
        var (request, errors) = Parse(Body(extra: ""","region":"eu","priority":"high","metadata":{"k":"v"}"""));

        errors.ShouldBeEmpty();
        request.ShouldNotBeNull();
        request.Model.ShouldBe("mlp-test");
        request.Region.ShouldBe("eu");
        request.Priority.ShouldBe("high");
        request.Metadata.ShouldNotBeNull();
        request.Metadata["k"].ShouldBe("v");
        var x = request.Inputs.ShouldHaveSingleItem();
        x.Name.ShouldBe("x");
        x.Datatype.ShouldBe("FP32");
        x.Shape.ShouldBe([1L, 4L]);
        x.Data.GetRawText().ShouldBe("[1,2,3,4]");
    }

    [Fact]
    public void Optional_fields_may_be_absent_or_null()
    {
        var (request, errors) = Parse(Body(extra: ""","region":null,"metadata":null"""));
        errors.ShouldBeEmpty();
        request.ShouldNotBeNull();
        request.Region.ShouldBeNull();
        request.Priority.ShouldBeNull();
        request.Metadata.ShouldBeNull();
    }

    [Fact]
    public void Nested_data_is_flattened_row_major()
    {
        var (request, errors) = Parse(Body(shape: "[2,2]", data: "[[1,2],[3,4]]"));
        errors.ShouldBeEmpty();
        request!.Inputs[0].Data.GetRawText().ShouldBe("[1,2,3,4]");
    }

    [Fact]
    public void Deeply_nested_data_of_eight_levels_is_flattened()
    {
        var (request, errors) = Parse(Body(shape: "[1,1,1,1,1,1,1,2]", data: "[[[[[[[[1.5,\"a\"]]]]]]]]"));
        errors.ShouldBeEmpty();
        request!.Inputs[0].Data.GetRawText().ShouldBe("[1.5,\"a\"]");
    }

    [Fact]
    public void Nesting_deeper_than_the_limit_is_refused()
    {
        var data = new string('[', 12) + "1" + new string(']', 12);
        Errors(Body(data: data))["inputs[0].data"].ShouldBe(["Nested data may be at most 8 levels deep."]);
    }

    [Fact]
    public void Nesting_of_nine_levels_is_refused()
    {
        var data = new string('[', 9) + "1" + new string(']', 9);
        Errors(Body(data: data)).ShouldContainKey("inputs[0].data");
    }

    [Theory]
    [InlineData("[1,2]")]
    [InlineData("\"text\"")]
    [InlineData("42")]
    [InlineData("null")]
    public void Body_that_is_not_an_object_is_refused(string json)
    {
        var errors = Errors(json);
        errors.Keys.ShouldBe(["$"]);
        errors["$"].ShouldBe(["The body must be a JSON object."]);
    }

    [Fact]
    public void Missing_model_is_refused()
    {
        var errors = Errors("""{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}""");
        errors.Keys.ShouldBe(["model"]);
        errors["model"].ShouldBe(["The field 'model' is required."]);
    }

    [Theory]
    [InlineData("5")]
    [InlineData("\"\"")]
    [InlineData("\"  \"")]
    [InlineData("[\"mlp\"]")]
    public void Model_that_is_not_a_non_empty_string_is_refused(string model)
    {
        Errors(Body().Replace("\"mlp-test\"", model, StringComparison.Ordinal))["model"]
            .ShouldBe(["The field 'model' must be a non-empty string."]);
    }

    [Theory]
    [InlineData("""{"model":"m","inputs":[]}""")]
    [InlineData("""{"model":"m","inputs":{}}""")]
    public void Empty_or_non_array_inputs_are_refused(string json)
    {
        Errors(json)["inputs"].ShouldBe(["The field 'inputs' must be a non-empty array of tensors."]);
    }

    [Fact]
    public void Missing_inputs_are_refused()
    {
        Errors("""{"model":"m"}""")["inputs"].ShouldBe(["The field 'inputs' is required."]);
    }

    [Fact]
    public void Unknown_top_level_field_is_refused_by_name()
    {
        var errors = Errors(Body(extra: ""","modle":"x" """));
        errors.Keys.ShouldBe(["modle"]);
        errors["modle"].ShouldHaveSingleItem().ShouldStartWith("Unknown field 'modle'");
    }

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("5s", 5000)]
    [InlineData("1.5", 1500)]
    [InlineData("1m", 60000)]
    public void Timeout_is_a_duration_like_wait(string timeout, double ms)
    {
        var (request, errors) = Parse(Body(extra: $$""","timeout":"{{timeout}}" """));

        errors.ShouldBeEmpty();
        request!.Timeout.ShouldBe(TimeSpan.FromMilliseconds(ms));
    }

    [Theory]
    [InlineData("\"soon\"", "timeout must be a duration such as 500ms, 5s, 1m or 24h (a bare number is seconds), at most the model's timeoutMs (GET /v1/models).")]
    [InlineData("\"-5s\"", "timeout must be a duration such as 500ms, 5s, 1m or 24h (a bare number is seconds), at most the model's timeoutMs (GET /v1/models).")]
    [InlineData("\"5 s\"", "timeout must be a duration such as 500ms, 5s, 1m or 24h (a bare number is seconds), at most the model's timeoutMs (GET /v1/models).")]
    [InlineData("500", "timeout must be a string: a duration such as 500ms, 5s, 1m or 24h (a bare number is seconds).")]
    [InlineData("\"\"", "The field 'timeout' must be a non-empty string.")]
    public void Timeout_that_is_no_duration_is_refused(string timeout, string message)
    {
        Errors(Body(extra: $$""","timeout":{{timeout}}"""))["timeout"].ShouldBe([message]);
    }

    [Fact]
    public void Unknown_tensor_field_is_refused_with_its_path()
    {
        var errors = Errors(Body(extraTensor: ""","shpae":[1]"""));
        errors.Keys.ShouldBe(["inputs[0].shpae"]);
        errors["inputs[0].shpae"].ShouldBe(["Unknown tensor field 'shpae'."]);
    }

    [Fact]
    public void Tensor_parameters_are_allowed()
    {
        Parse(Body(extraTensor: ""","parameters":{"a":1}""")).Errors.ShouldBeEmpty();
    }

    [Theory]
    [InlineData("[1,-1]", 1)]
    [InlineData("[0,4]", 0)]
    [InlineData("[1,1099511627776]", 1)]
    [InlineData("[1,2147483648]", 1)]
    [InlineData("[1.5,4]", 0)]
    [InlineData("[1,\"4\"]", 1)]
    [InlineData("[1,null]", 1)]
    public void Shape_with_an_invalid_dimension_is_refused(string shape, int dimension)
    {
        Errors(Body(shape: shape))["inputs[0].shape"]
            .ShouldBe([$"Dimension {dimension} must be an integer between 1 and {int.MaxValue}."]);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("[1,1,1,1,1,1,1,1,4]")]
    public void Shape_with_no_or_more_than_eight_dimensions_is_refused(string shape)
    {
        Errors(Body(shape: shape))["inputs[0].shape"].ShouldBe(["The shape must have between 1 and 8 dimensions."]);
    }

    [Fact]
    public void Shape_with_eight_dimensions_is_accepted()
    {
        Parse(Body(shape: "[1,1,1,1,1,1,1,4]")).Errors.ShouldBeEmpty();
    }

    [Theory]
    [InlineData("\"[1,4]\"")]
    [InlineData("4")]
    public void Shape_that_is_not_an_array_is_refused(string shape)
    {
        Errors(Body(shape: shape)).ShouldContainKey("inputs[0].shape");
    }

    [Fact]
    public void Unsupported_datatype_is_refused()
    {
        var errors = Errors(Body().Replace("FP32", "FP16", StringComparison.Ordinal));
        errors["inputs[0].datatype"].ShouldHaveSingleItem().ShouldStartWith("Datatype 'FP16' is not supported");
    }

    [Fact]
    public void Metadata_with_a_non_string_value_is_refused_by_key()
    {
        var errors = Errors(Body(extra: ""","metadata":{"ok":"yes","n":1}"""));
        errors.Keys.ShouldBe(["metadata.n"]);
        errors["metadata.n"].ShouldBe(["Metadata values must be strings."]);
    }

    [Fact]
    public void Metadata_with_more_than_the_maximum_entries_is_refused()
    {
        var entries = string.Join(",", Enumerable.Range(0, JobRequestParser.MaxMetadataEntries + 1).Select(i => $"\"k{i}\":\"v\""));
        Errors(Body(extra: $",\"metadata\":{{{entries}}}"))["metadata"].ShouldBe([$"At most {JobRequestParser.MaxMetadataEntries} metadata entries."]);
    }

    [Fact]
    public void Metadata_with_exactly_the_maximum_entries_is_accepted()
    {
        var entries = string.Join(",", Enumerable.Range(0, JobRequestParser.MaxMetadataEntries).Select(i => $"\"k{i}\":\"v\""));
        var (request, errors) = Parse(Body(extra: $",\"metadata\":{{{entries}}}"));
        errors.ShouldBeEmpty();
        request!.Metadata!.Count.ShouldBe(JobRequestParser.MaxMetadataEntries);
    }

    [Fact]
    public void Metadata_value_longer_than_the_limit_is_refused()
    {
        var value = new string('v', JobRequestParser.MaxMetadataLength + 1);
        Errors(Body(extra: $",\"metadata\":{{\"k\":\"{value}\"}}")).Keys.ShouldBe(["metadata.k"]);
    }

    [Fact]
    public void Errors_name_the_index_of_the_failing_input()
    {
        var json = """
            {"model":"m","inputs":[
              {"name":"a","datatype":"FP32","shape":[1],"data":[1]},
              {"name":"b","datatype":"FP32","shape":[0],"data":[1]}]}
            """;
        Errors(json).Keys.ShouldBe(["inputs[1].shape"]);
    }

    [Fact]
    public void Badly_broken_request_reports_every_fault()
    {
        var json = """
            {
              "modle": "mlp-test",
              "priority": 3,
              "inputs": [
                "x",
                { "name": "", "datatype": "FP16", "shape": [2, -1], "data": [[1, 2], 3], "dtype": "f" },
                { "name": "z", "datatype": "INT64", "shape": [1, 1, 1, 1, 1, 1, 1, 1, 1], "data": 5 }
              ],
              "metadata": { "user": 7, "trace": "abc" }
            }
            """;

        var (request, errors) = Parse(json);

        request.ShouldBeNull();
        errors.MatchSnapshot();
    }
}
