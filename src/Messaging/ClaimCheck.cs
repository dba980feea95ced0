using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Client.ObjectStore;

namespace CqrsInference.Messaging;

public sealed class ClaimCheckOptions
{
    /// <summary>Inputs or outputs larger than this (serialized JSON bytes) go to the object store.</summary>
    [Range(1, 64 * 1024 * 1024)]
    public int ThresholdBytes { get; set; } = 256 * 1024;

    /// <summary>How long a stored input or output is kept (the bucket stream's MaxAge); a job read later says its outputs expired.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "3650.00:00:00")]
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// The most the bucket may hold (its stream's MaxBytes); beyond it the oldest blobs are dropped
    /// first. JetStream reserves it up front, so it must fit in the server's <c>max_file_store</c>
    /// (10 GB in the scripts) beside whatever other streams reserve.
    /// </summary>
    [Range(1L, long.MaxValue)]
    public long MaxBytes { get; set; } = 4L * 1024 * 1024 * 1024;
}

/// <summary>
/// A blob a reference names is gone from the object store: older than <see cref="ClaimCheckOptions.MaxAge"/>
/// or dropped to keep the bucket under <see cref="ClaimCheckOptions.MaxBytes"/>. Reported as an
/// <see cref="InvalidDataException"/> (a processor fails a job whose input expired, as it does one
/// whose input changed) marked so that a reader can tell the two apart (<see cref="IsExpired"/>).
/// </summary>
public static class BlobExpired
{
    private const string Mark = "cqrsi.blob-expired";

    public static InvalidDataException Exception(string key)
    {
        var e = new InvalidDataException($"Blob {key} is no longer in the object store: it expired (ClaimCheck:MaxAge) or was dropped to keep the store under ClaimCheck:MaxBytes.");
        e.Data[Mark] = true;
        return e;
    }

    public static bool IsExpired(InvalidDataException e) => e.Data[Mark] is true;
}

/// <summary>
/// The claim-check pattern on the NATS object store: large inputs and outputs are stored once,
/// keyed by their SHA-256, and messages and events carry only the <see cref="BlobRef"/>. Whoever
/// reads a blob checks its hash, so a changed blob is refused, never used.
/// </summary>
public sealed class ClaimCheck(INatsJSContext js, ClaimCheckOptions options) : IClaimCheck
{
    public const string Bucket = "cqrsi_blobs";

    /// <summary>The stream behind the bucket, where its limits live.</summary>
    public const string BucketStream = $"OBJ_{Bucket}";

    /// <summary>How long a read may take before the blob's chunks are checked again (they may have expired under the reader).</summary>
    private static readonly TimeSpan ReadPatience = TimeSpan.FromSeconds(30);

    private INatsObjStore? _store;
    private INatsJSStream? _stream;

    public int ThresholdBytes => options.ThresholdBytes;

    /// <summary>
    /// Creates the bucket, or brings an existing one to the configured limits: its stream's MaxAge
    /// and MaxBytes (both may change on a live stream), discarding the oldest blobs when full rather
    /// than refusing new ones, and a duplicate window no longer than MaxAge (the server's rule).
    /// </summary>
    public static async Task EnsureBucketAsync(INatsJSContext js, ClaimCheckOptions options, int replicas, CancellationToken ct)
    {
        try
        {
            await LimitBucketAsync(js, options, replicas, ct);
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode is 10023 or 10047)
        {
            throw new InvalidOperationException(
                $"The object store bucket {Bucket} cannot reserve ClaimCheck:MaxBytes = {options.MaxBytes:N0} bytes: {e.Error.Description}. "
                + "Lower ClaimCheck:MaxBytes or raise the nats-server's jetstream max_file_store.", e);
        }
    }

    private static async Task LimitBucketAsync(INatsJSContext js, ClaimCheckOptions options, int replicas, CancellationToken ct)
    {
        try
        {
            await new NatsObjContext(js).CreateObjectStoreAsync(
                new NatsObjConfig(Bucket)
                {
                    Description = "Large job inputs and outputs, by SHA-256 (claim check).",
                    Storage = NatsObjStorageType.File,
                    NumberOfReplicas = replicas,
                    MaxAge = options.MaxAge,
                    MaxBytes = options.MaxBytes,
                },
                ct);
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == 10058)
        {
            // Stream name already in use with a different configuration: an older bucket, updated below.
        }

        var config = (await js.GetStreamAsync(BucketStream, cancellationToken: ct)).Info.Config;
        var duplicates = config.DuplicateWindow > options.MaxAge || config.DuplicateWindow == TimeSpan.Zero ? options.MaxAge : config.DuplicateWindow;
        if (config.MaxAge != options.MaxAge || config.MaxBytes != options.MaxBytes || config.Discard != StreamConfigDiscard.Old || config.DuplicateWindow != duplicates)
        {
            config.MaxAge = options.MaxAge;
            config.MaxBytes = options.MaxBytes;
            config.Discard = StreamConfigDiscard.Old;
            config.DuplicateWindow = duplicates;
            await js.UpdateStreamAsync(config, ct);
        }
    }

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

    /// <summary>
    /// Reads the tensors a reference names; an expired <see cref="InvalidDataException"/> (<see cref="BlobExpired"/>) if the blob is gone (or
    /// partly gone: the oldest chunks are dropped first), <see cref="InvalidDataException"/> if it is
    /// not what was stored.
    /// </summary>
    public async Task<IReadOnlyList<Tensor>> LoadAsync(BlobRef blob, CancellationToken ct)
    {
        var bytes = await ReadAsync(blob.Key, ct);
        var actual = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (actual != blob.Sha256)
        {
            throw new InvalidDataException($"Blob {blob.Key} has SHA-256 {actual}, not {blob.Sha256}: it was changed after it was stored.");
        }

        return JsonSerializer.Deserialize(bytes, Commands.WireJson.Default.ListTensor) ?? [];
    }

    private async Task<byte[]> ReadAsync(string key, CancellationToken ct)
    {
        var store = await StoreAsync(ct);
        try
        {
            // A blob whose chunks are all gone would keep the object store's reader waiting for them.
            var info = await store.GetInfoAsync(key, cancellationToken: ct);
            if (info.Nuid is null || (info.Chunks > 0 && !await HasChunksAsync(info.Nuid, ct)))
            {
                throw BlobExpired.Exception(key);
            }

            using var patience = CancellationTokenSource.CreateLinkedTokenSource(ct);
            patience.CancelAfter(ReadPatience);
            try
            {
                return await store.GetBytesAsync(key, patience.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                // The chunks may have expired after the check above; otherwise the store is just slow.
                throw await HasChunksAsync(info.Nuid, ct) ? new TimeoutException($"Blob {key} could not be read in {ReadPatience.TotalSeconds:F0} s.") : BlobExpired.Exception(key);
            }
        }
        catch (NatsObjNotFoundException)
        {
            throw BlobExpired.Exception(key);
        }
        catch (NatsObjException)
        {
            // The object store's own digest, chunk or size check failed: the oldest chunks were dropped.
            throw BlobExpired.Exception(key);
        }
    }

    private async Task<bool> HasChunksAsync(string nuid, CancellationToken ct)
    {
        _stream ??= await js.GetStreamAsync(BucketStream, cancellationToken: ct);
        try
        {
            await _stream.GetAsync(new StreamMsgGetRequest { LastBySubj = $"$O.{Bucket}.C.{nuid}" }, ct);
            return true;
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return false;
        }
    }

    private async ValueTask<INatsObjStore> StoreAsync(CancellationToken ct) =>
        _store ??= await new NatsObjContext(js).GetObjectStoreAsync(Bucket, ct);
}
