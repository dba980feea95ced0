using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using Microsoft.ML.OnnxRuntime;

namespace CqrsInference.Processors.Runtime;

/// <summary>
/// Silero VAD v5: the speech probability of one 576-sample chunk of 16 kHz audio (512 new samples
/// after 64 of context), from a fresh recurrent state. Chunks of many jobs run as one batch.
/// </summary>
internal sealed class VadRunner(InferenceSession session, string device) : BatchingRunner<float[]>
{
    public const int ChunkSamples = 576;

    public override string Device => device;

    public override void WarmUp() => RunBatch([new float[ChunkSamples]], CancellationToken.None);

    protected override float[] Prepare(JobCommand job)
    {
        var samples = TensorJson.ReadFloats(job.Input("audio"));
        if (samples.Length != ChunkSamples)
        {
            throw new InvalidInputException("invalid_shape", $"Input 'audio' must hold {ChunkSamples} samples.");
        }

        return samples;
    }

    protected override IReadOnlyList<IReadOnlyList<Tensor>> RunBatch(IReadOnlyList<float[]> inputs, CancellationToken abort)
    {
        var batch = new float[inputs.Count * ChunkSamples];
        for (var b = 0; b < inputs.Count; b++)
        {
            inputs[b].CopyTo(batch, b * ChunkSamples);
        }

        using var audio = OrtValue.CreateTensorValueFromMemory(batch, [inputs.Count, ChunkSamples]);
        using var state = OrtValue.CreateTensorValueFromMemory(new float[2 * inputs.Count * 128], [2, inputs.Count, 128]);
        var srShape = session.InputMetadata["sr"].Dimensions.Length == 0 ? Array.Empty<long>() : [1L];
        using var sampleRate = OrtValue.CreateTensorValueFromMemory(new long[] { 16000 }, srShape);
        using var outputs = OrtRuns.Run(
            session,
            new Dictionary<string, OrtValue> { ["input"] = audio, ["state"] = state, ["sr"] = sampleRate },
            ["output"],
            abort);
        var probabilities = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        return inputs.Select((_, b) => (IReadOnlyList<Tensor>)[TensorJson.Fp32("speech_probability", [1, 1], probabilities.AsSpan(b, 1))]).ToList();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            session.Dispose();
        }
    }
}
