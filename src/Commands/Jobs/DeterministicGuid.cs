using System.Security.Cryptography;
using System.Text;

namespace CqrsInference.Commands.Jobs;

/// <summary>
/// Name-based (RFC 9562 version 5) identifiers, so that a retried submit or a redelivered job
/// produces the same job id and the same event ids, and duplicates are absorbed by identity.
/// </summary>
public static class DeterministicGuid
{
    private static readonly Guid JobNamespace = new("6f1d8e44-2b0e-4f0a-9a52-9d7c1f3c6a10");

    /// <summary>The job id for an <c>Idempotency-Key</c>, scoped to its tenant.</summary>
    public static Guid ForIdempotencyKey(string tenant, string key) => Create(JobNamespace, $"{tenant}\n{key}");

    /// <summary>The id of the event <paramref name="eventName"/> of attempt <paramref name="attempt"/> of a job.</summary>
    public static Guid ForEvent(Guid jobId, string eventName, int attempt) =>
        Create(jobId, $"{eventName}\n{attempt}");

    public static Guid Create(Guid @namespace, string name)
    {
        Span<byte> ns = stackalloc byte[16];
        @namespace.TryWriteBytes(ns, bigEndian: true, out _);
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var input = new byte[16 + nameBytes.Length];
        ns.CopyTo(input);
        nameBytes.CopyTo(input, 16);
#pragma warning disable CA5350 // SHA-1 is what RFC 9562 specifies for version 5 ids; not a security use.
        var hash = SHA1.HashData(input);
#pragma warning restore CA5350
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true);
    }
}
