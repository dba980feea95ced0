using System.Text.Json;
using CqrsInference.Commands.Models;

namespace CqrsInference.Commands.Jobs.Submitting;

/// <summary>Checks a job's input tensors against the model's declared inputs.</summary>
public static class TensorValidator
{
    /// <summary>The most elements one job may send, over all its inputs.</summary>
    public const long MaxElements = 4_000_000;

    /// <summary>The datatypes a tensor may have; what each can hold is <see cref="TensorElements"/>' rule.</summary>
    public static readonly IReadOnlySet<string> Datatypes = new HashSet<string>(TensorElements.Datatypes);

    public static IEnumerable<(string Field, string Message)> Validate(ModelDefinition model, IReadOnlyList<Tensor> inputs)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long total = 0;
        for (var i = 0; i < inputs.Count; i++)
        {
            var input = inputs[i];
            var field = $"inputs[{i}]";
            if (!seen.Add(input.Name))
            {
                yield return ($"{field}.name", $"Input '{input.Name}' is given more than once.");
                continue;
            }

            var spec = model.Inputs.FirstOrDefault(s => s.Name == input.Name);
            if (spec is null)
            {
                yield return ($"{field}.name", $"Model '{model.Name}' has no input '{input.Name}'; its inputs are: {string.Join(", ", model.Inputs.Select(s => s.Name))}.");
                continue;
            }

            if (input.Datatype != spec.Datatype)
            {
                yield return ($"{field}.datatype", $"Input '{input.Name}' must be {spec.Datatype}, not {input.Datatype}.");
                continue;
            }

            var shapeError = CheckShape(spec, input.Shape, model.MaxBatch);
            if (shapeError is not null)
            {
                yield return ($"{field}.shape", shapeError);
                continue;
            }

            var count = ElementCount(input.Shape);

            total += count;
            if (total > MaxElements)
            {
                yield return ($"{field}.data", $"The inputs hold more than {MaxElements} elements in all.");
                yield break;
            }

            if (CheckData(spec, input, count) is (var where, var dataError))
            {
                yield return ($"{field}.{where}", dataError);
            }
        }

        foreach (var missing in model.Inputs.Where(s => !seen.Contains(s.Name)))
        {
            yield return ("inputs", $"Input '{missing.Name}' ({missing.Datatype} {FormatShape(missing.Shape)}) is required.");
        }
    }

    /// <summary>
    /// Elements of a shape, capped just above the limit. Each dimension is below 2^31, so the product
    /// is checked as it grows: it cannot wrap around to a small number and slip past the limit.
    /// </summary>
    private static long ElementCount(long[] shape)
    {
        var count = 1L;
        foreach (var dimension in shape)
        {
            count = Math.Min(count * dimension, MaxElements + 1);
        }

        return count;
    }

    public static string FormatShape(long[] shape) => $"[{string.Join(",", shape)}]";

    private static string? CheckShape(TensorSpec spec, long[] shape, int maxBatch)
    {
        if (shape.Length != spec.Shape.Length)
        {
            return $"Input '{spec.Name}' must have rank {spec.Shape.Length} {FormatShape(spec.Shape)}, not {shape.Length}.";
        }

        for (var d = 0; d < shape.Length; d++)
        {
            if (shape[d] <= 0 || shape[d] > int.MaxValue)
            {
                return $"Dimension {d} of input '{spec.Name}' must be between 1 and {int.MaxValue}, not {shape[d]}.";
            }

            if (spec.Shape[d] != -1 && spec.Shape[d] != shape[d])
            {
                return $"Dimension {d} of input '{spec.Name}' must be {spec.Shape[d]} {FormatShape(spec.Shape)}, not {shape[d]}.";
            }
        }

        if (maxBatch > 1 && spec.Shape[0] == -1 && shape[0] > maxBatch)
        {
            return $"Dimension 0 (batch) of input '{spec.Name}' must be at most {maxBatch}, not {shape[0]}.";
        }

        return null;
    }

    /// <summary>
    /// The data's length, then each element against the datatype (and the declared encoding); the
    /// first bad element is named by its index.
    /// </summary>
    private static (string Field, string Message)? CheckData(TensorSpec spec, Tensor input, long count)
    {
        if (input.Data.ValueKind != JsonValueKind.Array)
        {
            return ("data", $"Data of input '{input.Name}' must be an array.");
        }

        var length = input.Data.GetArrayLength();
        if (length != count)
        {
            return ("data", $"Input '{input.Name}' has shape {FormatShape(input.Shape)}, which needs {count} elements, but data holds {length}.");
        }

        var index = 0;
        foreach (var element in input.Data.EnumerateArray())
        {
            if (TensorElements.Problem(input.Datatype, element) is { } problem)
            {
                return ($"data[{index}]", $"Element {index} of input '{input.Name}' {problem}.");
            }

            if (spec.Encoding == TensorEncodings.Base64 && !System.Buffers.Text.Base64.IsValid(element.GetString()))
            {
                return ($"data[{index}]", $"Element {index} of input '{input.Name}' is not valid base64; this input takes bytes encoded as standard base64 (RFC 4648, with '=' padding).");
            }

            index++;
        }

        return null;
    }
}
