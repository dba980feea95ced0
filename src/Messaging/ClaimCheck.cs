using System.Security.Cryptography;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using NATS.Client.JetStream;
using NATS.Client.ObjectStore;

namespace CqrsInference.Messaging;


public sealed class ClaimCheckOptions
{
    /// <summary>Inputs or outputs larger than this (serialized JSON bytes) go to the object store.</summary>
    public int ThresholdBytes { get; set; } = 256 * 1024;
}

/// <summary>
/// The claim-check pattern on the NATS object store: large inputs and outputs are stored once,
/// keyed by their SHA-256, and messages and events carry only the <see cref="BlobRef"/>. Whoever
/// reads a blob checks its hash, so a changed blob is refused, never used.
/// </summary>
public sealed class ClaimCheck(INatsJSContext js, ClaimCheckOptions options) : IClaimCheck
{
    public const string Bucket = "cqrsi_blobs";
    private INatsObjStore? _store;

    public int ThresholdBytes => options.ThresholdBytes;

    public static async Task EnsureBucketAsync(INatsJSContext js, CancellationToken ct, int replicas = 1) =>
        await new NatsObjContext(js).CreateObjectStoreAsync(
            new NatsObjConfig(Bucket) { Description = "Large job inputs and outputs, by SHA-256 (claim check).", Storage = NatsObjStorageType.File, NumberOfReplicas = replicas },
            ct);

    /// <summary>The tensors themselves, or a reference to them when they are over the threshold.</summary>
    public async Task<(IReadOnlyList<Tensor> Inline, BlobRef? Ref)> OffloadAsync(IReadOnlyList<Tensor> tensors, CancellationToken ct)
    {
        if (AtMost(tensors) <= options.ThresholdBytes)
        {
            // Small for certain: not serialized just to be measured.
            return (tensors, null);
        }

        var bytes = JsonSerializer.SerializeToUtf8Bytes(tensors.ToList(), Commands.WireJson.Default.ListTensor);
        if (bytes.Length <= options.ThresholdBytes)
        {
            return (tensors, null);
        }

        var sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var store = await StoreAsync(ct);
        await store.PutAsync(sha256, bytes, ct);
        return ([], new BlobRef(Bucket, sha256, sha256, bytes.Length));
    }

    /// <summary>
    /// An upper bound of the tensors' serialized size without serializing them: each one's data as
    /// received, three times over (the writer may escape a character of two bytes as six), plus its
    /// name, datatype and shape.
    /// </summary>
    private static long AtMost(IReadOnlyList<Tensor> tensors)
    {
        long bound = 2;
        foreach (var tensor in tensors)
        {
            bound += 3L * System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(tensor.Data).Length
                + 6L * (tensor.Name.Length + tensor.Datatype.Length) + (21L * tensor.Shape.Length) + 64;
        }

        return bound;
    }

    /// <summary>Reads the tensors a reference names; <see cref="InvalidDataException"/> if the blob is not what was stored.</summary>
    public async Task<IReadOnlyList<Tensor>> LoadAsync(BlobRef blob, CancellationToken ct)
    {
        var store = await StoreAsync(ct);
        byte[] bytes;
        try
        {
            bytes = await store.GetBytesAsync(blob.Key, ct);
        }
        catch (NatsObjNotFoundException)
        {
            throw new InvalidDataException($"Blob {blob.Key} is missing from the object store.");
        }

        var actual = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (actual != blob.Sha256)
        {
            throw new InvalidDataException($"Blob {blob.Key} has SHA-256 {actual}, not {blob.Sha256}: it was changed after it was stored.");
        }

        return JsonSerializer.Deserialize(bytes, Commands.WireJson.Default.ListTensor) ?? [];
    }

    private async ValueTask<INatsObjStore> StoreAsync(CancellationToken ct) =>
        _store ??= await new NatsObjContext(js).GetObjectStoreAsync(Bucket, ct);
}
