using CqrsInference.Projections.Audit;
using CqrsInference.Projections.Recording;
using JasperFx;
using Marten;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Weasel.Core;

namespace CqrsInference.Projections;

/// <summary>
/// The event store's schema in PostgreSQL: Marten's tables, functions and indexes for every
/// document, projection and the event log, and two tables of our own (audit seals, recorder terms).
/// Who changes it is a setting, <see cref="ApplyChangesSetting"/>: a development host applies the
/// changes when it starts (the default in appsettings.json); a production host
/// (appsettings.Production.json) never does, so that a new release cannot alter a shared database
/// by merely starting, and several instances cannot race to; there the <c>migrate</c> command
/// applies them (<see cref="ApplyAsync"/>, what Marten's <c>db-apply</c> does), and every start
/// refuses to run against a schema that still lacks something (<see cref="SchemaCheck"/>).
/// </summary>
public static class DatabaseSchema
{
    /// <summary><c>Cqrsi:ApplySchemaChanges</c>: true (default), hosts apply schema changes at start; false, only <c>migrate</c> does.</summary>
    public const string ApplyChangesSetting = "Cqrsi:ApplySchemaChanges";

    /// <summary>Creates or updates every object of the schema <paramref name="schema"/> (idempotent).</summary>
    public static async Task ApplyAsync(IDocumentStore store, NpgsqlDataSource db, string schema, CancellationToken ct)
    {
        // The override: a store configured not to change the schema (production) still may here.
        await store.Storage.ApplyAllConfiguredChangesToDatabaseAsync(AutoCreate.CreateOrUpdate);
        await AuditSealer.EnsureTableAsync(db, schema, ct);
        await using var terms = db.CreateCommand(RecorderFence.CreateTableSql(schema));
        await terms.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The objects of Marten's part of the schema that are missing or differ from this version's configuration.</summary>
    public static async Task<IReadOnlyList<string>> PendingChangesAsync(IDocumentStore store, CancellationToken ct)
    {
        var migration = await store.Storage.Database.CreateMigrationAsync(ct);
        return migration.Difference == SchemaPatchDifference.None
            ? []
            : migration.Deltas.Where(d => d.Difference != SchemaPatchDifference.None)
                .Select(d => $"{d.SchemaObject.Identifier} ({d.Difference.ToString().ToLowerInvariant()})")
                .ToList();
    }
}

/// <summary>
/// At start, when this host does not change the schema: stops the start with a message that says
/// to run <c>migrate</c> if the schema lacks anything, rather than failing later, query by query,
/// on a missing table. Registered first, so that nothing else starts on a schema that is not ready.
/// </summary>
internal sealed class SchemaCheck(IDocumentStore store, string schema) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var pending = await DatabaseSchema.PendingChangesAsync(store, cancellationToken);
        if (pending.Count > 0)
        {
            throw new SchemaNotMigratedException(schema, pending);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>The event store's schema is missing objects this version needs, and this host may not create them.</summary>
public sealed class SchemaNotMigratedException(string schema, IReadOnlyList<string> pending) : Exception(
    $"The PostgreSQL schema '{schema}' is not ready for this version: {pending.Count} object(s) to create or change "
    + $"({string.Join(", ", pending.Take(5))}{(pending.Count > 5 ? ", …" : "")}). This host does not change the schema "
    + $"({DatabaseSchema.ApplyChangesSetting} is false, as in appsettings.Production.json): run `CqrsInference.Api migrate` "
    + "with the same settings (systemd: cqrsi-migrate.service; container: the image with the argument migrate), then start it again.")
{
    /// <summary>The objects that are missing or differ.</summary>
    public IReadOnlyList<string> Pending { get; } = pending;
}
