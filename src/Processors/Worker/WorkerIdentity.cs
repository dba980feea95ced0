namespace CqrsInference.Processors.Worker;

/// <summary>
/// Who runs a job, as its events say: the processor's worker id and region, the device the model
/// runs on and the device class it is billed as.
/// </summary>
internal sealed record WorkerIdentity(string Worker, string Region, string Device, string DeviceClass);
