using System.Buffers;
using System.Text.Json;
using CqrsInference.Commands.Jobs;

namespace CqrsInference.Processors.Runtime;

/// <summary>Converts between KServe v2 tensors (flat JSON arrays) and plain arrays.</summary>
internal static class TensorJson
{
    public static Tensor Input(this Commands.Jobs.JobCommand job, string name) =>
        job.Inputs.FirstOrDefault(t => t.Name == name)
        ?? throw new InvalidInputException("missing_input", $"Input '{name}' is missing.");

    /// <summary>
    /// An FP32 tensor's elements. Submit refuses anything else (<see cref="Commands.Jobs.Submitting.TensorElements"/>);
    /// a job queued before that rule, or by another way in, is rejected here instead of faulting on every retry.
    /// </summary>
    public static float[] ReadFloats(Tensor tensor)
    {
        var result = new float[tensor.Data.GetArrayLength()];
        var i = 0;
        foreach (var element in tensor.Data.EnumerateArray())
        {
            if (!Commands.Jobs.Submitting.TensorElements.TryGetFiniteSingle(element, out result[i]))
            {
                throw new InvalidInputException("invalid_input", $"Element {i} of input '{tensor.Name}' is not a finite FP32 number.");
            }

            i++;
        }

        return result;
    }

    public static string ReadString(Tensor tensor, int index = 0) =>
        tensor.Data[index].GetString() ?? throw new InvalidInputException("invalid_input", $"Element {index} of '{tensor.Name}' is not a string.");

    /// <summary>
    /// An FP32 output as JSON. NaN and ±Infinity have no JSON form (the writer would throw, and the
    /// job would be retried into the dead letter for a result that can never be written): they end
    /// the job with <see cref="JobErrorCodes.NonFiniteOutput"/> instead.
    /// </summary>
    public static Tensor Fp32(string name, long[] shape, ReadOnlySpan<float> data)
    {
        var nonFinite = CountNonFinite(data);
        if (nonFinite > 0)
        {
            throw new NonFiniteOutputException(name, nonFinite);
        }

        var buffer = new ArrayBufferWriter<byte>(data.Length * 8 + 2);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var value in data)
            {
                writer.WriteNumberValue(value);
            }

            writer.WriteEndArray();
        }

        return new Tensor(name, "FP32", shape, JsonDocument.Parse(buffer.WrittenMemory).RootElement.Clone());
    }

    private static int CountNonFinite(ReadOnlySpan<float> data)
    {
        var count = 0;
        foreach (var value in data)
        {
            if (!float.IsFinite(value))
            {
                count++;
            }
        }

        return count;
    }

    public static Tensor Bytes(string name, params string[] values) =>
        new(name, "BYTES", [values.Length], JsonSerializer.SerializeToElement(values, TensorJsonContext.Default.StringArray));
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
internal sealed partial class TensorJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
