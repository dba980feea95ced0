using Google.Protobuf;

namespace CqrsInference.Processors.Runtime;

/// <summary>
/// Models the processor writes itself, byte for byte the same on every run, so tests have a real
/// ONNX model whose outputs they can compute independently. Written with the protobuf wire format
/// of onnx.proto directly (field numbers noted inline), which needs no generated code.
/// </summary>
internal static class GeneratedModels
{
    public const string MlpV1 = "mlp-v1";

    /// <summary>mlp-v1 with every output raised by <see cref="Mlp.V2Shift"/>: a second version whose answers differ from v1's (shadow and backtest tests).</summary>
    public const string MlpV2 = "mlp-v2";

    /// <summary>Writes the model named <paramref name="generator"/> to <paramref name="path"/> if absent.</summary>
    public static void EnsureWritten(string generator, string path)
    {
        if (File.Exists(path))
        {
            return;
        }

        var bytes = generator switch
        {
            MlpV1 => Mlp.Build(),
            MlpV2 => Mlp.Build(Mlp.V2Shift),
            _ => throw new InvalidOperationException($"Unknown model generator '{generator}'."),
        };
        // Several processes may write it at once (e.g. processors starting together on a fresh
        // machine): each writes its own temporary file, and the atomic rename of identical bytes
        // lets any of them win.
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>
    /// y = relu(x·W1 + b1)·W2 + b2 with x [N,4], W1 [4,8], b1 [8], W2 [8,3], b2 [3], N dynamic.
    /// </summary>
    public static class Mlp
    {
        public const int In = 4;
        public const int Hidden = 8;
        public const int Out = 3;

        /// <summary>What mlp-v2 adds to each of mlp-v1's outputs.</summary>
        public const float V2Shift = 1f;

        public static float W1(int i, int j) => (((i * Hidden) + j) % 7 - 3) / 4f;

        public static float B1(int j) => (j % 3 - 1) / 8f;

        public static float W2(int j, int k) => (((j * Out) + k) % 5 - 2) / 3f;

        public static float B2(int k) => k / 10f;

        /// <summary>The same function in plain C#, for checking outputs.</summary>
        public static float[] Evaluate(ReadOnlySpan<float> x)
        {
            var hidden = new float[Hidden];
            for (var j = 0; j < Hidden; j++)
            {
                var sum = B1(j);
                for (var i = 0; i < In; i++)
                {
                    sum += x[i] * W1(i, j);
                }

                hidden[j] = Math.Max(0, sum);
            }

            var y = new float[Out];
            for (var k = 0; k < Out; k++)
            {
                var sum = 0f;
                for (var j = 0; j < Hidden; j++)
                {
                    sum += hidden[j] * W2(j, k);
                }

                y[k] = sum + B2(k);
            }

            return y;
        }

        public static byte[] Build(float outputShift = 0f)
        {
            var graph = Message(w =>
            {
                Bytes(w, 1, Node(["x", "W1"], ["h0"], "MatMul"));
                Bytes(w, 1, Node(["h0", "b1"], ["h1"], "Add"));
                Bytes(w, 1, Node(["h1"], ["h2"], "Relu"));
                Bytes(w, 1, Node(["h2", "W2"], ["y0"], "MatMul"));
                Bytes(w, 1, Node(["y0", "b2"], ["y"], "Add"));
                String(w, 2, "mlp");
                Bytes(w, 5, Initializer("W1", [In, Hidden], (i, j) => W1(i, j)));
                Bytes(w, 5, Initializer("b1", [Hidden], (_, j) => B1(j)));
                Bytes(w, 5, Initializer("W2", [Hidden, Out], (j, k) => W2(j, k)));
                Bytes(w, 5, Initializer("b2", [Out], (_, k) => B2(k) + outputShift));
                Bytes(w, 11, ValueInfo("x", In));
                Bytes(w, 12, ValueInfo("y", Out));
            });
            return Message(w =>
            {
                w.WriteTag(1, WireFormat.WireType.Varint); // ir_version
                w.WriteInt64(8);
                String(w, 2, "cqrsinference"); // producer_name
                Bytes(w, 7, graph); // graph
                Bytes(w, 8, Message(o => // opset_import
                {
                    String(o, 1, "");
                    o.WriteTag(2, WireFormat.WireType.Varint);
                    o.WriteInt64(13);
                }));
            });
        }

        private static byte[] Node(string[] inputs, string[] outputs, string op) => Message(w =>
        {
            foreach (var input in inputs)
            {
                String(w, 1, input);
            }

            foreach (var output in outputs)
            {
                String(w, 2, output);
            }

            String(w, 3, op + "_" + outputs[0]);
            String(w, 4, op);
        });

        private static byte[] Initializer(string name, int[] dims, Func<int, int, float> value) => Message(w =>
        {
            foreach (var d in dims)
            {
                w.WriteTag(1, WireFormat.WireType.Varint); // dims
                w.WriteInt64(d);
            }

            w.WriteTag(2, WireFormat.WireType.Varint); // data_type FLOAT
            w.WriteInt32(1);
            var rows = dims.Length == 1 ? 1 : dims[0];
            var cols = dims[^1];
            var data = Message(f =>
            {
                for (var r = 0; r < rows; r++)
                {
                    for (var c = 0; c < cols; c++)
                    {
                        f.WriteFloat(value(r, c));
                    }
                }
            });
            Bytes(w, 4, data); // float_data, packed
            String(w, 8, name);
        });

        private static byte[] ValueInfo(string name, int features) => Message(w =>
        {
            String(w, 1, name);
            Bytes(w, 2, Message(type => // TypeProto
                Bytes(type, 1, Message(tensor => // tensor_type
                {
                    tensor.WriteTag(1, WireFormat.WireType.Varint); // elem_type FLOAT
                    tensor.WriteInt32(1);
                    Bytes(tensor, 2, Message(shape => // TensorShapeProto
                    {
                        Bytes(shape, 1, Message(dim => String(dim, 2, "N"))); // dim_param
                        Bytes(shape, 1, Message(dim =>
                        {
                            dim.WriteTag(1, WireFormat.WireType.Varint); // dim_value
                            dim.WriteInt64(features);
                        }));
                    }));
                }))));
        });

        private static byte[] Message(Action<CodedOutputStream> write)
        {
            using var buffer = new MemoryStream();
            using (var output = new CodedOutputStream(buffer, leaveOpen: true))
            {
                write(output);
            }

            return buffer.ToArray();
        }

        private static void Bytes(CodedOutputStream w, int field, byte[] value)
        {
            w.WriteTag(field, WireFormat.WireType.LengthDelimited);
            w.WriteBytes(ByteString.CopyFrom(value));
        }

        private static void String(CodedOutputStream w, int field, string value)
        {
            w.WriteTag(field, WireFormat.WireType.LengthDelimited);
            w.WriteString(value);
        }
    }
}
