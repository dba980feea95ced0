using CqrsInference.Projections;
using Marten;
using Npgsql;

namespace CqrsInference.Api.Hosting;

/// <summary>
/// <c>migrate</c>: creates or updates the event store's schema in PostgreSQL for this version
/// (Marten's tables, functions and indexes for every role's documents and projections, and the
/// audit and recorder tables), as Marten's <c>db-apply</c> does; running it again changes nothing.
/// A production host (<c>Cqrsi:ApplySchemaChanges</c> false) starts only on a schema this has
/// prepared. Same settings as the host (appsettings, environment, <c>--Key=value</c>, secret files).
/// Exit code 0: the schema matches this version.
/// </summary>
internal static class MigrateCommand
{
    public static bool Handles(string[] args) => args is ["migrate", ..];

    public static async Task<int> RunAsync(string[] args)
    {
        var builder = AppBuilder.Create(args[1..]);
        // Every role's documents (the API's keys, the projections' read models), whichever roles run here.
        builder.Configuration.AddInMemoryCollection([new("Cqrsi:Roles", "api,projections")]);
        builder.AddServiceDefaults();
        builder.AddCqrsInferenceRoles();
        await using var app = builder.Build();
        var schema = app.Configuration["Cqrsi:Schema"] ?? "cqrsi";
        var store = app.Services.GetRequiredService<IDocumentStore>();
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        var pending = await DatabaseSchema.PendingChangesAsync(store, cancel.Token);
        Console.WriteLine($"Migrating the PostgreSQL schema '{schema}': {pending.Count} object(s) of Marten's to create or change.");
        foreach (var change in pending)
        {
            Console.WriteLine($"  {change}");
        }

        await DatabaseSchema.ApplyAsync(store, app.Services.GetRequiredService<NpgsqlDataSource>(), schema, cancel.Token);
        var left = await DatabaseSchema.PendingChangesAsync(store, cancel.Token);
        Console.WriteLine(left.Count == 0
            ? "READY: the schema matches this version."
            : $"NOT READY: {left.Count} object(s) still differ: {string.Join(", ", left)}");
        return left.Count == 0 ? 0 : 1;
    }
}
