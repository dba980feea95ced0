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

    public static float[] ReadFloats(Tensor tensor)
    {
        var result = new float[tensor.Data.GetArrayLength()];
        var i = 0;
        foreach (var element in tensor.Data.EnumerateArray())
        {
            result[i++] = element.GetSingle();
        }

        return result;
    }

    public static string ReadString(Tensor tensor, int index = 0) =>
        tensor.Data[index].GetString() ?? throw new InvalidInputException("invalid_input", $"Element {index} of '{tensor.Name}' is not a string.");

    public static Tensor Fp32(string name, long[] shape, ReadOnlySpan<float> data)
    {
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

    public static Tensor Bytes(string name, params string[] values) =>
        new(name, "BYTES", [values.Length], JsonSerializer.SerializeToElement(values, TensorJsonContext.Default.StringArray));
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
internal sealed partial class TensorJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
