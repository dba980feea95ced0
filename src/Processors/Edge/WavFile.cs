using System.Buffers.Binary;
using CqrsInference.Commands.Jobs;

namespace CqrsInference.Processors.Edge;

/// <summary>
/// Reads 16-bit PCM WAV into 16 kHz mono floats (channels averaged, linear resampling). A file that
/// is anything else, or not what its own header says, is refused with an
/// <see cref="UnreadableItemException"/> naming what is wrong; nothing is read past a chunk's end.
/// </summary>
internal static class WavFile
{
    public const int TargetRate = 16000;

    /// <summary>Lower rates would grow the samples more than twofold when resampled.</summary>
    public const int MinRate = 8000;

    public const int MaxRate = 384000;

    public const int MaxChannels = 32;

    private const int PcmFormatBytes = 16;

    public static float[] ReadMono16k(ReadOnlySpan<byte> wav)
    {
        if (wav.Length < 12 || !wav[..4].SequenceEqual("RIFF"u8) || !wav.Slice(8, 4).SequenceEqual("WAVE"u8))
        {
            throw new UnreadableItemException(EdgeErrorCodes.NotWav, "Not a RIFF/WAVE file.");
        }

        (int Channels, int Rate)? format = null;
        var offset = 12;
        while (offset + 8 <= wav.Length)
        {
            var id = wav.Slice(offset, 4);
            var size = BinaryPrimitives.ReadUInt32LittleEndian(wav.Slice(offset + 4, 4));
            if (size > (uint)(wav.Length - offset - 8))
            {
                throw new UnreadableItemException(EdgeErrorCodes.WavChunkTruncated,
                    $"Chunk '{ChunkName(id)}' at byte {offset} claims {size} bytes; the file has {wav.Length - offset - 8} after its header.");
            }

            var body = wav.Slice(offset + 8, (int)size);
            if (id.SequenceEqual("fmt "u8))
            {
                format = Format(body);
            }
            else if (id.SequenceEqual("data"u8))
            {
                var (channels, rate) = format
                    ?? throw new UnreadableItemException(EdgeErrorCodes.WavFormatMissing, "The data chunk comes before any fmt chunk.");
                if (body.Length % (2 * channels) != 0)
                {
                    throw new UnreadableItemException(EdgeErrorCodes.WavDataMisaligned,
                        $"The data chunk holds {body.Length} bytes, not a whole number of {2 * channels}-byte frames.");
                }

                return Resample(ToMono(body, channels), rate);
            }

            offset += 8 + (int)size + (int)(size & 1);
        }

        throw new UnreadableItemException(EdgeErrorCodes.WavDataMissing, "No data chunk.");
    }

    private static (int Channels, int Rate) Format(ReadOnlySpan<byte> body)
    {
        if (body.Length < PcmFormatBytes)
        {
            throw new UnreadableItemException(EdgeErrorCodes.WavFormatInvalid, $"The fmt chunk holds {body.Length} bytes; PCM needs {PcmFormatBytes}.");
        }

        var encoding = BinaryPrimitives.ReadUInt16LittleEndian(body);
        var channels = BinaryPrimitives.ReadUInt16LittleEndian(body[2..]);
        var rate = BinaryPrimitives.ReadUInt32LittleEndian(body[4..]);
        var bits = BinaryPrimitives.ReadUInt16LittleEndian(body[14..]);
        if (encoding != 1 || bits != 16)
        {
            throw new UnreadableItemException(EdgeErrorCodes.WavUnsupportedEncoding, $"Only 16-bit PCM WAV is supported; this is format {encoding} with {bits} bits per sample.");
        }

        if (channels is 0 or > MaxChannels)
        {
            throw new UnreadableItemException(EdgeErrorCodes.WavChannels, $"{channels} channels; 1 to {MaxChannels} are supported.");
        }

        if (rate is < MinRate or > MaxRate)
        {
            throw new UnreadableItemException(EdgeErrorCodes.WavSampleRate, $"Sample rate {rate} Hz; {MinRate} to {MaxRate} Hz are supported.");
        }

        return (channels, (int)rate);
    }

    private static string ChunkName(ReadOnlySpan<byte> id)
    {
        Span<char> name = stackalloc char[4];
        for (var i = 0; i < 4; i++)
        {
            name[i] = id[i] is >= 0x20 and < 0x7f ? (char)id[i] : '?';
        }

        return new string(name);
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
