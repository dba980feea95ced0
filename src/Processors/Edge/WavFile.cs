using System.Buffers.Binary;

namespace CqrsInference.Processors.Edge;

/// <summary>Reads 16-bit PCM WAV into 16 kHz mono floats (channels averaged, linear resampling).</summary>
internal static class WavFile
{
    public const int TargetRate = 16000;

    public static float[] ReadMono16k(ReadOnlySpan<byte> wav)
    {
        if (wav.Length < 12 || !wav[..4].SequenceEqual("RIFF"u8) || !wav.Slice(8, 4).SequenceEqual("WAVE"u8))
        {
            throw new InvalidDataException("Not a RIFF/WAVE file.");
        }

        int channels = 0, rate = 0, bits = 0;
        var offset = 12;
        while (offset + 8 <= wav.Length)
        {
            var id = wav.Slice(offset, 4);
            var size = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(wav.Slice(offset + 4, 4)), (uint)(wav.Length - offset - 8));
            var body = wav.Slice(offset + 8, size);
            if (id.SequenceEqual("fmt "u8))
            {
                if (BinaryPrimitives.ReadUInt16LittleEndian(body) != 1)
                {
                    throw new InvalidDataException("Only PCM WAV is supported.");
                }

                channels = BinaryPrimitives.ReadUInt16LittleEndian(body[2..]);
                rate = BinaryPrimitives.ReadInt32LittleEndian(body[4..]);
                bits = BinaryPrimitives.ReadUInt16LittleEndian(body[14..]);
            }
            else if (id.SequenceEqual("data"u8))
            {
                if (channels <= 0 || rate <= 0 || bits != 16)
                {
                    throw new InvalidDataException("Only 16-bit PCM WAV with a fmt chunk before its data is supported.");
                }

                return Resample(ToMono(body, channels), rate);
            }

            offset += 8 + size + (size & 1);
        }

        throw new InvalidDataException("No data chunk.");
    }

    private static float[] ToMono(ReadOnlySpan<byte> data, int channels)
    {
        var frames = data.Length / (2 * channels);
        var mono = new float[frames];
        for (var f = 0; f < frames; f++)
        {
            var sum = 0f;
            for (var c = 0; c < channels; c++)
            {
                sum += BinaryPrimitives.ReadInt16LittleEndian(data.Slice(((f * channels) + c) * 2, 2)) / 32768f;
            }

            mono[f] = sum / channels;
        }

        return mono;
    }

    private static float[] Resample(float[] samples, int rate)
    {
        if (rate == TargetRate || samples.Length == 0)
        {
            return samples;
        }

        var length = (int)((long)samples.Length * TargetRate / rate);
        var output = new float[length];
        var step = (double)rate / TargetRate;
        for (var i = 0; i < length; i++)
        {
            var position = i * step;
            var left = (int)position;
            var right = Math.Min(left + 1, samples.Length - 1);
            var t = (float)(position - left);
            output[i] = (samples[left] * (1 - t)) + (samples[right] * t);
        }

        return output;
    }
}
