namespace CqrsInference.Commands.Jobs;

/// <summary>Version 1 of the price history: one Marten stream (<see cref="Pricing.PriceLists.StreamId"/>), appended in Marten directly.</summary>
public static partial class V1
{
    /// <summary>
    /// The price of a device-hour per device class (keys in lower case) is <paramref name="PricePerHour"/>
    /// from <paramref name="From"/> on, until the next list; recorded by <paramref name="SetBy"/> (a host
    /// that started with <c>Analytics:PricePerHour</c> different from the last list recorded).
    /// </summary>
    public sealed record PriceListSet(IReadOnlyDictionary<string, decimal> PricePerHour, DateTimeOffset From, string SetBy);
}
