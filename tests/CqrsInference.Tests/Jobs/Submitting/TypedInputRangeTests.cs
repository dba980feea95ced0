using System.Net;
using CqrsInference.Tests.Fixtures;

namespace CqrsInference.Tests.Jobs.Submitting;

/// <summary>Submit's range rules for the integer, FP64 and BOOL datatypes, over HTTP.</summary>
public sealed class TypedInputRangeTests(PipelineWithTypedInputModel pipeline) : IClassFixture<PipelineWithTypedInputModel>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task Values_at_the_edges_of_each_datatype_are_accepted()
    {
        var job = await _client.SubmitAsync(PipelineWithTypedInputModel.Job(count: "-2147483648", id: "9223372036854775807", weight: "-1.7976931348623157e308", flag: "false"));

        job.Status.ShouldBe(HttpStatusCode.Accepted, job.Body.ToString());
    }

    [Theory]
    [InlineData("2147483648", "7", "inputs[0].data[0]", "Element 0 of input 'count' is 2147483648, outside INT32's range (-2147483648 to 2147483647).")]
    [InlineData("2.5", "7", "inputs[0].data[0]", "Element 0 of input 'count' is 2.5, not an integer: INT32 takes whole numbers written without a fraction or exponent.")]
    [InlineData("7", "9223372036854775808", "inputs[1].data[0]", "Element 0 of input 'id' is 9223372036854775808, outside INT64's range (-9223372036854775808 to 9223372036854775807).")]
    [InlineData("7", "1e3", "inputs[1].data[0]", "Element 0 of input 'id' is 1e3, not an integer: INT64 takes whole numbers written without a fraction or exponent.")]
    public async Task Integer_beyond_its_range_or_with_a_fraction_is_refused_naming_the_element(string count, string id, string field, string message)
    {
        var job = await _client.SubmitAsync(PipelineWithTypedInputModel.Job(count: count, id: id));

        job.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        job.Body.GetProperty("errors").EnumerateObject().Select(e => e.Name).ShouldBe([field]);
        job.Body.GetProperty("errors").GetProperty(field)[0].GetString().ShouldBe(message);
    }

    [Fact]
    public async Task FP64_beyond_its_range_and_a_non_boolean_flag_are_both_reported()
    {
        var job = await _client.SubmitAsync(PipelineWithTypedInputModel.Job(weight: "1e309", flag: "1"));

        job.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        var errors = job.Body.GetProperty("errors");
        errors.GetProperty("inputs[2].data[0]")[0].GetString().ShouldBe("Element 0 of input 'weight' is 1e309, outside FP64's range (±1.7976931348623157E+308).");
        errors.GetProperty("inputs[3].data[0]")[0].GetString().ShouldBe("Element 0 of input 'flag' must be true or false for BOOL, not a number.");
    }
}
