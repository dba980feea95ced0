using System.Security.Cryptography;
using System.Text;

namespace CqrsInference.Projections.Audit;

/// <summary>
/// The tamper-evidence hashes. Each recorded event is sealed with the hash of its content (sequence,
/// stream, version, type, timestamp and PostgreSQL's canonical jsonb text of its data), a hash that
/// chains to the previous event of the same job stream, and a hash that chains to the previous seal
/// overall. Changing, deleting or moving any event breaks the link at that event.
/// </summary>
internal static class AuditChain
{
    public static readonly byte[] Genesis = new byte[32];

    public static string Table(string schema) => $"{schema}.cqrsi_audit_seal";

    public static string CreateTableSql(string schema) => $"""
        create table if not exists {Table(schema)} (
            seal_index  bigint primary key,
            seq_id      bigint not null unique,
            stream_id   uuid not null,
            version     bigint not null,
            event_hash  bytea not null,
            stream_hash bytea not null,
            chain_hash  bytea not null,
            sealed_at   timestamptz not null default now());
        create index if not exists cqrsi_audit_seal_stream on {Table(schema)} (stream_id, seal_index);
        """;

    public static byte[] EventHash(long sequence, Guid stream, long version, string type, DateTimeOffset timestamp, string data) =>
        SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{sequence}\n{stream:D}\n{version}\n{type}\n{timestamp.UtcTicks}\n{data}"));

    public static byte[] Link(byte[] previous, byte[] eventHash)
    {
        Span<byte> buffer = stackalloc byte[64];
        previous.CopyTo(buffer);
        eventHash.CopyTo(buffer[32..]);
        return SHA256.HashData(buffer);
    }
}
