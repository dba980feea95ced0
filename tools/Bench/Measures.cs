using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using HdrHistogram;

namespace CqrsInference.Bench;

/// <summary>
/// What every benchmark measures with: percentiles (HdrHistogram, 3 significant digits: the one way
/// any percentile or median is computed in the benchmarks) and a submit.
/// </summary>
internal static class Measures
{
    /// <summary>
    /// The value at percentile <paramref name="p"/> of <paramref name="ms"/> (NaN for none): latencies
    /// in milliseconds, or any other non-negative measure (jobs/s over rounds), to 0.001 and 3
    /// significant digits. The median of an even count is the lower middle value, not a mean.
    /// </summary>
    public static double Percentile(IEnumerable<double> ms, double p)
    {
        var histogram = new LongHistogram(TimeSpan.FromHours(1).Ticks / 10, 3);
        var any = false;
        foreach (var value in ms)
        {
            if (!double.IsNaN(value))
            {
                histogram.RecordValue(Math.Max(1, (long)(value * 1000)));
                any = true;
            }
        }

        return any ? histogram.GetValueAtPercentile(p) / 1000.0 : double.NaN;
    }

    /// <summary>p50 / p95 / p99 in milliseconds.</summary>
    public static string Triple(IReadOnlyCollection<double> ms) => $"{Percentile(ms, 50):F1} / {Percentile(ms, 95):F1} / {Percentile(ms, 99):F1}";

    public static async Task<Guid> SubmitAsync(HttpClient http, string body)
    {
        using var response = await http.PostAsync("/v1/jobs", new StringContent(body, Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    /// <summary>A job body for the generated test model that differs by <paramref name="i"/>.</summary>
    public static string MlpBody(int i) => $$"""{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[{{i % 10}},1,2,3]}]}""";
}
