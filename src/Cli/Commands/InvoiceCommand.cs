using System.CommandLine;
using System.Globalization;

namespace CqrsInference.Cli.Commands;

/// <summary><c>cqrsi invoice</c>: a tenant's invoice for a month, as the API's CSV (<c>GET /v1/analytics/invoice</c>), to standard output.</summary>
internal static class InvoiceCommand
{
    public static Command Create(Cqrsi cqrsi)
    {
        var month = new Option<string>("--month") { Description = "YYYY-MM (UTC)", DefaultValueFactory = _ => DateTimeOffset.UtcNow.ToString("yyyy-MM", CultureInfo.InvariantCulture) };
        var tenant = new Option<string?>("--tenant") { Description = "The tenant (the key's own when left out; the operator must name one)" };
        var invoice = new Command("invoice", "A tenant's invoice for a month: one CSV line per job with its device-seconds and cost, and a total") { month, tenant };
        return cqrsi.Handle(invoice, async (context, ct) =>
        {
            var of = context.Parse.GetValue(tenant);
            await using var stream = await context.Api.ReadStreamAsync(
                $"/v1/analytics/invoice?month={Uri.EscapeDataString(context.Value(month))}{(of is null ? "" : $"&tenant={Uri.EscapeDataString(of)}")}", ct);
            await using var stdout = Console.OpenStandardOutput();
            await stream.CopyToAsync(stdout, ct);
            return ExitCodes.Ok;
        });
    }
}
