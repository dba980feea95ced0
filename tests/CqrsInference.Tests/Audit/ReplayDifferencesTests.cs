using CqrsInference.Projections.Audit;
using CqrsInference.Projections.JobStatus;

namespace CqrsInference.Tests.Audit;

/// <summary>What a replay reports about differing documents: bounded, and by property, not whole documents.</summary>
public sealed class ReplayDifferencesTests
{
    private static readonly JobStatus Status = new(
        Guid.NewGuid(), "default", "succeeded", "mlp", "1", "eu", "normal", DateTimeOffset.UnixEpoch, "digest", null, Attempts: 1);

    [Fact]
    public void Identical_documents_are_no_difference()
    {
        var differences = new ReplayDifferences(listed: 100);

        differences.Compare(Status.Id, Status, Status with { });

        differences.Count.ShouldBe(0);
    }

    [Fact]
    public void A_differing_document_is_named_by_its_differing_properties_only()
    {
        var differences = new ReplayDifferences(listed: 100);

        differences.Compare(Status.Id, Status with { Attempts = 7 }, Status);

        differences.Listed.ShouldHaveSingleItem().Problem.ShouldBe("differs in Attempts: live 7, rebuilt 1");
    }

    [Fact]
    public void A_long_value_is_cut_short()
    {
        var differences = new ReplayDifferences(listed: 100);

        differences.Compare(Status.Id, Status with { Webhook = new string('x', 10_000) }, Status);

        var problem = differences.Listed.ShouldHaveSingleItem().Problem;
        problem.Length.ShouldBeLessThan(ReplayDifferences.ValueChars + 100);
        problem.ShouldContain("(10002 chars)");
    }

    [Fact]
    public void Only_the_first_differences_are_listed_and_the_rest_counted()
    {
        var differences = new ReplayDifferences(listed: 100);

        for (var i = 0; i < 250; i++)
        {
            differences.Add(Guid.NewGuid(), "missing");
        }

        differences.Count.ShouldBe(250);
        differences.Listed.Count.ShouldBe(100);
        differences.Unlisted.ShouldBe(150);
    }
}
