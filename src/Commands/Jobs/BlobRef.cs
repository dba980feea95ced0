namespace CqrsInference.Commands.Jobs;

/// <summary>Where a large tensor payload lives instead of the message: the object store, by its SHA-256.</summary>
public sealed record BlobRef(string Bucket, string Key, string Sha256, long Bytes);
