using CqrsInference.Commands.Jobs;

namespace CqrsInference.Commands.Pricing;

/// <summary>
/// The price history, as a pure rule: which list is in force at a moment. Prices are configuration
/// (<c>Analytics:PricePerHour</c>); recording each change as an event makes "the price in force when
/// a job ran" a fact of the log, so a job's cost and the invoice come out the same after a rebuild
/// from the events, whatever the configuration says by then.
/// </summary>
public static class PriceLists
{
    public const string PriceListSet = "v1.price_list_set";

    /// <summary>Every price event type with its wire name (registered with Marten).</summary>
    public static readonly IReadOnlyDictionary<string, Type> Types = new Dictionary<string, Type> { [PriceListSet] = typeof(V1.PriceListSet) };

    /// <summary>The one stream of the price history.</summary>
    public static readonly Guid StreamId = new("6d0b8e8a-2f55-4c61-9a57-1c4e0f3b7d21");

    /// <summary>The list as it is recorded: keys in lower case, so that a list differs from another only in its prices.</summary>
    public static SortedDictionary<string, decimal> Normalize(IReadOnlyDictionary<string, decimal> prices) =>
        new(prices.ToDictionary(p => p.Key.ToLowerInvariant(), p => p.Value), StringComparer.Ordinal);

    /// <summary>Whether <paramref name="configured"/> differs from the last list recorded (none recorded: it differs).</summary>
    public static bool Differs(IReadOnlyDictionary<string, decimal> configured, V1.PriceListSet? last) =>
        last is null || !Normalize(configured).SequenceEqual(Normalize(last.PricePerHour));

    /// <summary>
    /// The price of a device-hour of <paramref name="deviceClass"/> at <paramref name="at"/>: from the
    /// last list set at or before it; a run older than the whole history is priced by the first list
    /// (what was configured before prices were recorded is not known); 0 for a class no list names,
    /// and when no list is recorded at all.
    /// </summary>
    public static decimal PriceAt(IReadOnlyList<V1.PriceListSet> history, string deviceClass, DateTimeOffset at)
    {
        V1.PriceListSet? inForce = null;
        foreach (var list in history)
        {
            if (inForce is null || list.From <= at)
            {
                inForce = list;
            }
        }

        return inForce?.PricePerHour.GetValueOrDefault(deviceClass.ToLowerInvariant()) ?? 0m;
    }
}
