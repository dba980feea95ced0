using System.Globalization;
using CsvHelper;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Analytics;

/// <summary>
/// The analytics endpoints' CSV (<c>Accept: text/csv</c>), written by CsvHelper: RFC 4180 quoting,
/// invariant culture, a header of the rows' properties in camelCase. Text that a spreadsheet would
/// run as a formula (a field starting with <c>=</c>, <c>+</c>, <c>-</c>, <c>@</c>, a tab or a
/// carriage return: OWASP's CSV injection) is escaped with a leading <c>'</c> and quoted; numbers and
/// times are never text, so a negative number stays a number.
/// </summary>
internal static class CsvExport
{
    public const string ContentType = "text/csv";

    private static readonly CsvWriterOptions Options = new()
    {
        Injection = CsvInjection.Escape,
        FormatProvider = CultureInfo.InvariantCulture,
    };

    public static bool Wanted(HttpContext http) => Http.AcceptHeader.Prefers(http.Request, ContentType);

    public static ContentHttpResult Of<T>(IReadOnlyList<T> rows)
    {
        var properties = typeof(T).GetProperties();
        using var text = new StringWriter(CultureInfo.InvariantCulture);
        using (var csv = CsvWriter.Create(text, Options, leaveOpen: true))
        {
            csv.WriteHeader(properties.Select(p => char.ToLowerInvariant(p.Name[0]) + p.Name[1..]).ToArray());
            foreach (var row in rows)
            {
                foreach (var property in properties)
                {
                    Write(csv, property.GetValue(row));
                }

                csv.EndRecord();
            }
        }

        return TypedResults.Text(text.ToString(), ContentType, System.Text.Encoding.UTF8);
    }

    private static void Write(CsvWriter csv, object? value)
    {
        if (value is DateTimeOffset time)
        {
            csv.WriteField(time.ToUniversalTime(), "yyyy-MM-ddTHH:mm:ssZ");
        }
        else
        {
            csv.WriteField(value);
        }
    }
}
