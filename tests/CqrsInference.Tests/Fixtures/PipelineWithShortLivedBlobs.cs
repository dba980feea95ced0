namespace CqrsInference.Tests.Fixtures;

/// <summary>Anything over 512 bytes goes to the object store, and is kept there 5 seconds.</summary>
public sealed class PipelineWithShortLivedBlobs : PipelineWithAllRoles
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(5);

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["ClaimCheck:ThresholdBytes"] = "512",
        ["ClaimCheck:MaxAge"] = MaxAge.ToString(),
    };
}
