using System.Text.Json;
using CqrsInference.Api.Inference;
using CqrsInference.Commands;
using CqrsInference.Commands.Models;

namespace CqrsInference.Tests.Inference;

/// <summary>How an Open Inference Protocol body is read, without a server.</summary>
public sealed class InferRequestReaderTests
{
    private static readonly ModelDefinition Model = new()
    {
        Name = "two-heads",
        Version = "3",
        Runner = "tensor",
        File = "two-heads.onnx",
        Inputs = [new TensorSpec("x", "FP32", [-1, 2])],
        Outputs = [new TensorSpec("a", "FP32", [-1, 1]), new TensorSpec("b", "FP32", [-1, 1])],
    };

    private const string Input = """ "inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[[1,2]]}] """;

    [Fact]
    public void The_parameters_that_map_onto_a_job_are_read_and_the_others_ignored()
    {
        var (request, errors) = Parse(With(""","id":"r-7","parameters":{"priority":"batch","region":"eu","deadline":"2030-01-01T00:00:00Z","timeout":"250ms","sequence_id":4,"x-trace":{"a":1}}"""));

        errors.ShouldBeEmpty();
        var (id, parameters, inputs, outputs) = request!.Value;
        id.ShouldBe("r-7");
        parameters.ShouldBe(new InferParameters("eu", "batch", DateTimeOffset.Parse("2030-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture), TimeSpan.FromMilliseconds(250)));
        inputs.ShouldHaveSingleItem().Data.GetArrayLength().ShouldBe(2, "nested data is flattened");
        outputs.ShouldBeNull();
    }

    [Fact]
    public void Requested_outputs_must_be_the_models_and_an_empty_list_asks_for_all()
    {
        var (request, _) = Parse(With(""","outputs":[{"name":"b","parameters":{"binary_data":true}}]"""));
        request!.Value.Outputs.ShouldBe(["b"]);

        Parse(With(""","outputs":[]""")).Request!.Value.Outputs.ShouldBeNull();

        var (_, errors) = Parse(With(""","outputs":[{"name":"c"},"a",{}]"""));
        errors.Keys.ShouldBe(["outputs[0].name", "outputs[1]", "outputs[2].name"], ignoreOrder: true);
        errors["outputs[0].name"].ShouldHaveSingleItem().ShouldContain("its outputs are: a, b");

        var (_, more) = Parse(With(""","outputs":[{"name":"a"},{"name":"a"},{"name":"b","shape":[1]},{"name":"b2","parameters":"x"}]"""));
        more.Keys.ShouldBe(["outputs[1].name", "outputs[2].shape", "outputs[3].name", "outputs[3].parameters"], ignoreOrder: true);
        more["outputs[1].name"].ShouldHaveSingleItem().ShouldContain("more than once");
    }

    [Theory]
    [InlineData("""{"parameters":{"timeout":5000}}""", "parameters.timeout")]
    [InlineData("""{"parameters":{"priority":1}}""", "parameters.priority")]
    [InlineData("""{"parameters":{"deadline":"tomorrow"}}""", "parameters.deadline")]
    [InlineData("""{"parameters":{"timeout":"soon"}}""", "parameters.timeout")]
    [InlineData("""{"parameters":[1]}""", "parameters")]
    [InlineData("""{"id":5}""", "id")]
    [InlineData("""{"model":"two-heads"}""", "model")]
    public void A_field_of_the_wrong_kind_is_named(string extra, string field)
    {
        var body = extra.Insert(1, Input + ",");

        Parse(body).Errors.Keys.ShouldBe([field]);
    }

    [Fact]
    public void A_tensors_parameters_must_be_an_object_as_a_requested_outputs_must()
    {
        Parse("""{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2],"parameters":5}]}""").Errors.Keys.ShouldBe(["inputs[0].parameters"]);
        Parse("""{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2],"parameters":{"binary_data_size":8}}]}""").Errors.ShouldBeEmpty();
    }

    [Fact]
    public void The_paths_model_and_version_are_part_of_the_requests_digest()
    {
        // The body names no model: the same key and body on another model's path (one with the same
        // inputs) was a replay of the first model's job, answered with its outputs and not charged.
        var request = new InferRequest(null, new InferParameters(null, null, null, null), [], null, "key", "body-digest");
        var caller = new Api.Security.ApiCaller("t", new HashSet<string>(), "k");
        var other = new ModelDefinition { Name = "two-heads-b", Version = "3", Runner = "tensor", File = "b.onnx", Inputs = Model.Inputs, Outputs = Model.Outputs };
        string Digest(ModelDefinition model, string? version) => request.ToCommand(caller, model, version, DateTimeOffset.UnixEpoch, TimeSpan.FromSeconds(1)).RequestDigest;

        Digest(Model, null).ShouldNotBe(Digest(other, null));
        Digest(Model, null).ShouldNotBe(Digest(Model, "3"));
        Digest(Model, null).ShouldBe(Digest(Model, null));
    }

    [Fact]
    public void A_body_without_inputs_or_not_an_object_is_refused()
    {
        Parse("""{"id":"r"}""").Errors.Keys.ShouldBe(["inputs"]);
        Parse("[]").Errors.Keys.ShouldBe(["$"]);
    }

    /// <summary>A body with the input and <paramref name="more"/> fields (each starting with a comma).</summary>
    private static string With(string more) => "{" + Input + more + "}";

    private static ((string? Id, InferParameters Parameters, List<Commands.Jobs.Tensor> Inputs, IReadOnlySet<string>? Outputs)? Request, Dictionary<string, string[]> Errors) Parse(string json)
    {
        var errors = new FieldErrors();
        using var document = JsonDocument.Parse(json);
        var request = InferRequestReader.Parse(document.RootElement.Clone(), Model, errors);
        return (errors.Count == 0 ? request : null, errors.ToDictionary());
    }
}
