using System.Buffers.Binary;
using System.Security.Cryptography;

namespace CqrsInference.Commands.Models;

/// <summary>
/// Where an unpinned job goes among a model's versions: by the weights when any serving version has
/// one, else to the default. The choice is a pure function of the job id: its SHA-256 picks a
/// bucket 0 to 99, and the serving versions' weights, in manifest order, cover the buckets in
/// turn (90/10: buckets 0–89 and 90–99). The same job (a retry, a redelivery, an idempotent
/// resubmit with the same id) therefore always lands on the same version while the weights stand,
/// and ids spread evenly over buckets whatever their own layout (random or time-ordered).
/// </summary>
public static class VersionSplit
{
    /// <summary>Number of buckets the job ids fall into: the weights are percentages.</summary>
    public const int Buckets = 100;

    /// <summary>The bucket (0 to 99) of <paramref name="jobId"/>.</summary>
    public static int BucketOf(Guid jobId)
    {
        Span<byte> id = stackalloc byte[16];
        jobId.TryWriteBytes(id);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(id, hash);
        return (int)(BinaryPrimitives.ReadUInt64BigEndian(hash) % Buckets);
    }

    /// <summary>The version an unpinned job <paramref name="jobId"/> runs on, of <paramref name="versions"/> (one model's, as the catalog holds them).</summary>
    public static ModelDefinition Route(IReadOnlyList<ModelVersionInfo> versions, Guid jobId)
    {
        var weighted = versions.Where(v => v.IsServing && v.Weight > 0).ToList();
        if (weighted.Count == 0)
        {
            return (versions.FirstOrDefault(v => v.IsDefault) ?? versions[0]).Model;
        }

        var bucket = BucketOf(jobId);
        var covered = 0;
        foreach (var version in weighted)
        {
            covered += version.Weight;
            if (bucket < covered)
            {
                return version.Model;
            }
        }

        // Load makes the weights sum to 100; a catalog built by hand with less sends the rest to the last.
        return weighted[^1].Model;
    }
}
