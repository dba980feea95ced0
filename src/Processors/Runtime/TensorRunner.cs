using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Commands.Models;
using Microsoft.ML.OnnxRuntime;

namespace CqrsInference.Processors.Runtime;

/// <summary>
/// Plain FP32 tensors in, FP32 tensors out, batched along dimension 0: the jobs' rows are
/// concatenated into one call and the output rows are split back by each job's row count.
/// </summary>
internal sealed class TensorRunner(ModelDefinition model, InferenceSession session, string device)
    : BatchingRunner<TensorRunner.Rows>
{
    public sealed record Rows(int Count, Dictionary<string, float[]> Inputs);

    public override string Device => device;

    public override void WarmUp()
    {
        var inputs = model.Inputs.ToDictionary(
            s => s.Name,
            s => new float[s.Shape.Select(d => d == -1 ? 1 : d).Aggregate(1L, (a, d) => a * d)]);
        RunBatch([new Rows(1, inputs)], CancellationToken.None);
    }

    protected override Rows Prepare(JobCommand job)
    {
        var inputs = new Dictionary<string, float[]>();
        var rows = 1;
        foreach (var spec in model.Inputs)
        {
            var tensor = job.Input(spec.Name);
            if (tensor.Datatype != "FP32")
            {
                throw new InvalidInputException("invalid_datatype", $"Input '{spec.Name}' must be FP32.");
            }

            rows = (int)tensor.Shape[0];
            inputs[spec.Name] = TensorJson.ReadFloats(tensor);
        }

        return new Rows(rows, inputs);
    }

    protected override IReadOnlyList<IReadOnlyList<Tensor>> RunBatch(IReadOnlyList<Rows> inputs, CancellationToken abort)
    {
        var totalRows = inputs.Sum(i => i.Count);
        var values = new Dictionary<string, OrtValue>();
        try
        {
            foreach (var spec in model.Inputs)
            {
                var width = spec.Shape.Skip(1).Aggregate(1L, (a, d) => a * d);
                var data = new float[totalRows * width];
                var offset = 0;
                foreach (var input in inputs)
                {
                    input.Inputs[spec.Name].CopyTo(data, offset);
                    offset += input.Inputs[spec.Name].Length;
                }

                values[spec.Name] = OrtValue.CreateTensorValueFromMemory(data, [totalRows, .. spec.Shape.Skip(1)]);
            }

            using var outputs = OrtRuns.Run(session, values, model.Outputs.Select(o => o.Name).ToList(), abort);
            var perJob = inputs.Select(_ => new List<Tensor>()).ToList();
            for (var o = 0; o < model.Outputs.Count; o++)
            {
                var span = outputs[o].GetTensorDataAsSpan<float>();
                var shape = outputs[o].GetTensorTypeAndShape().Shape;
                var width = (int)shape.Skip(1).Aggregate(1L, (a, d) => a * d);
                var row = 0;
                for (var j = 0; j < inputs.Count; j++)
                {
                    var count = inputs[j].Count;
                    perJob[j].Add(TensorJson.Fp32(model.Outputs[o].Name, [count, .. shape.Skip(1)], span.Slice(row * width, count * width)));
                    row += count;
                }
            }

            return perJob;
        }
        finally
        {
            foreach (var value in values.Values)
            {
                value.Dispose();
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            session.Dispose();
        }
    }
}
