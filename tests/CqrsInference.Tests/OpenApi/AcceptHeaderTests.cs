using CqrsInference.Api.Http;
using Microsoft.AspNetCore.Http;

namespace CqrsInference.Tests.OpenApi;

/// <summary>
/// Which answer an <c>Accept</c> header chooses on the endpoints that give JSON or CSV (analytics) and
/// JSON or NDJSON (the audit feed): the qualities count, not whether the type appears in the header.
/// </summary>
public sealed class AcceptHeaderTests
{
    [Theory]
    [InlineData("text/csv", true)]
    [InlineData("TEXT/CSV; charset=utf-8", true)]
    [InlineData("application/json;q=0.9, text/csv", true)]
    [InlineData("text/csv, application/json", true)]
    [InlineData("text/csv;q=0", false)]
    [InlineData("application/json, text/csv;q=0.5", false)]
    [InlineData("text/csv;q=0.5, */*", false)]
    [InlineData("text/csv;q=0.5, application/*;q=0.4", true)]
    [InlineData("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", false)]
    [InlineData("text/*", false)]
    [InlineData("application/json", false)]
    [InlineData("", false)]
    [InlineData("not a media type", false)]
    public void Csv_is_chosen_only_when_asked_for_at_least_as_much_as_json(string accept, bool csv)
    {
        var http = new DefaultHttpContext();
        http.Request.Headers.Accept = accept;

        AcceptHeader.Prefers(http.Request, "text/csv").ShouldBe(csv, accept);
    }
}
