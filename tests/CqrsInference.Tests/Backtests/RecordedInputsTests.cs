using System.Text.Json;
using CqrsInference.Commands.Jobs;

namespace CqrsInference.Tests.Backtests;

/// <summary>The digest of a job's kept inputs (<see cref="RecordedInputs"/>): its meaning, as PostgreSQL's jsonb gives it back. Pure logic.</summary>
public sealed class RecordedInputsTests
{
    [Theory]
    [InlineData("[-0.0, 1, 2, 3]", "[0.0, 1, 2, 3]")]
    [InlineData("[1e-5, 2]", "[0.00001, 2.0]")]
    public void Inputs_as_jsonb_stores_them_have_the_digest_they_were_submitted_with(string submitted, string stored)
    {
        RecordedInputs.Verify([Tensor(stored)], RecordedInputs.Digest([Tensor(submitted)])).ShouldBeTrue();
    }

    [Fact]
    public void A_changed_element_changes_the_digest()
    {
        RecordedInputs.Verify([Tensor("[0.0, 1, 2, 4]")], RecordedInputs.Digest([Tensor("[0.0, 1, 2, 3]")])).ShouldBeFalse();
    }

    private static Tensor Tensor(string data) => new("x", "FP32", [1, 4], JsonDocument.Parse(data).RootElement.Clone());
}
