using CqrsInference.Api.Jobs;

namespace CqrsInference.Tests.Jobs;

public sealed class DurationsTests
{
    [Theory]
    [InlineData("500ms", 0.5)]
    [InlineData("5", 5)]
    [InlineData("5s", 5)]
    [InlineData("1.5m", 90)]
    [InlineData("24h", 86_400)]
    public void A_duration_is_read_in_its_unit(string text, double seconds)
    {
        Durations.TryParse(text, out var duration).ShouldBeTrue();
        duration.ShouldBe(TimeSpan.FromSeconds(seconds));
    }

    [Theory]
    [InlineData("1d")]
    [InlineData("5 s")]
    [InlineData("-5s")]
    [InlineData("1e3s")]
    [InlineData("h")]
    public void Anything_else_is_not_a_duration(string text) =>
        Durations.TryParse(text, out _).ShouldBeFalse();
}
