namespace CqrsInference.Projections.Analytics;

/// <summary>
/// Log-scale latency histogram: bucket i counts values up to 0.1 ms × 1.25^i (80 buckets, up to
/// about 6 hours). Buckets add up across hours and groups, and any percentile is read off the
/// cumulative counts, to within 25%.
/// </summary>
public static class Histogram
{
    public const int Buckets = 80;
    private const double Base = 0.1;
    private const double Growth = 1.25;

    public static double UpperBoundMs(int bucket) => Base * Math.Pow(Growth, bucket);

    public static int BucketOf(double milliseconds) =>
        milliseconds <= Base ? 0 : Math.Min(Buckets - 1, (int)Math.Ceiling(Math.Log(milliseconds / Base) / Math.Log(Growth) - 1e-9));

    public static void Add(long[] counts, double milliseconds) => counts[BucketOf(milliseconds)]++;

    public static long[] Merge(IEnumerable<long[]> histograms)
    {
        var total = new long[Buckets];
        foreach (var histogram in histograms)
        {
            for (var i = 0; i < Buckets && i < histogram.Length; i++)
            {
                total[i] += histogram[i];
            }
        }

        return total;
    }

    /// <summary>The upper bound (ms) of the bucket holding the p-th percentile; null when empty.</summary>
    public static double? Percentile(long[] counts, double p)
    {
        var total = counts.Sum();
        if (total == 0)
        {
            return null;
        }

        var rank = (long)Math.Ceiling(p / 100 * total);
        long seen = 0;
        for (var i = 0; i < counts.Length; i++)
        {
            seen += counts[i];
            if (seen >= Math.Max(1, rank))
            {
                return Math.Round(UpperBoundMs(i), 3);
            }
        }

        return Math.Round(UpperBoundMs(counts.Length - 1), 3);
    }
}
