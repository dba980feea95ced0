using System.Buffers.Binary;
using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Edge;

namespace CqrsInference.Tests.Edge;

/// <summary>The edge site's WAV reader, fed good files and hostile ones (in memory): a hostile file is refused with its reason, never anything else.</summary>
public sealed class WavFileTests
{
    [Fact]
    public void Stereo_8_kHz_wav_becomes_16_kHz_mono()
    {
        short[] frames = [1000, 3000, -2000, -2000, 4000, 0];
        var wav = Riff(Fmt(channels: 2, rate: 8000), Chunk("data", Pcm(frames)));

        var samples = WavFile.ReadMono16k(wav);

        samples.Length.ShouldBe(6);
        samples[0].ShouldBe(2000 / 32768f, 1e-6f);
        samples[1].ShouldBe(0, 1e-6f);                      // halfway between 2000 and -2000
        samples[2].ShouldBe(-2000 / 32768f, 1e-6f);
        samples[4].ShouldBe(2000 / 32768f, 1e-6f);
    }

    [Fact]
    public void Chunks_it_does_not_know_are_skipped_with_their_pad_byte()
    {
        var wav = Riff(Chunk("LIST", [1, 2, 3]), Fmt(), Chunk("fact", [0, 0, 0, 0]), Chunk("data", Pcm([100, -100, 300])));

        WavFile.ReadMono16k(wav).ShouldBe([100 / 32768f, -100 / 32768f, 300 / 32768f]);
    }

    [Fact]
    public void A_data_chunk_without_samples_is_empty_audio() =>
        WavFile.ReadMono16k(Riff(Fmt(), Chunk("data", []))).ShouldBeEmpty();

    public static TheoryData<string, byte[], string> Hostile() => new()
    {
        { "empty file", [], EdgeErrorCodes.NotWav },
        { "text", "not a wav file at all"u8.ToArray(), EdgeErrorCodes.NotWav },
        { "RIFF of another form", [.. "RIFF"u8, 4, 0, 0, 0, .. "AVI "u8], EdgeErrorCodes.NotWav },
        { "random bytes", Random(7, 4096), EdgeErrorCodes.NotWav },
        { "header only", Riff(), EdgeErrorCodes.WavDataMissing },
        { "fmt chunk of 4 bytes", Riff(Chunk("fmt ", [1, 0, 1, 0]), Chunk("data", Pcm([1, 2]))), EdgeErrorCodes.WavFormatInvalid },
        { "fmt chunk of 14 bytes (no bit depth)", Riff(Chunk("fmt ", Fmt().Body[..14]), Chunk("data", Pcm([1, 2]))), EdgeErrorCodes.WavFormatInvalid },
        { "empty fmt chunk", Riff(Chunk("fmt ", []), Chunk("data", Pcm([1, 2]))), EdgeErrorCodes.WavFormatInvalid },
        { "no fmt chunk", Riff(Chunk("data", Pcm([1, 2]))), EdgeErrorCodes.WavFormatMissing },
        { "fmt after data", Riff(Chunk("data", Pcm([1, 2])), Fmt()), EdgeErrorCodes.WavFormatMissing },
        { "no data chunk", Riff(Fmt()), EdgeErrorCodes.WavDataMissing },
        { "data chunk cut short", Riff(Fmt(), Chunk("data", Pcm([1, 2, 3]), declaredSize: 1000)), EdgeErrorCodes.WavChunkTruncated },
        { "fmt chunk larger than the file", Riff(Chunk("fmt ", Fmt().Body, declaredSize: uint.MaxValue)), EdgeErrorCodes.WavChunkTruncated },
        { "unknown chunk larger than the file", Riff(Chunk("LIST", [1, 2], declaredSize: 0x7fff_fff0), Fmt(), Chunk("data", Pcm([1]))), EdgeErrorCodes.WavChunkTruncated },
        { "zero channels", Riff(Fmt(channels: 0), Chunk("data", Pcm([1, 2]))), EdgeErrorCodes.WavChannels },
        { "65535 channels", Riff(Fmt(channels: 65535), Chunk("data", Pcm([1, 2]))), EdgeErrorCodes.WavChannels },
        { "zero sample rate", Riff(Fmt(rate: 0), Chunk("data", Pcm([1, 2]))), EdgeErrorCodes.WavSampleRate },
        { "1 Hz", Riff(Fmt(rate: 1), Chunk("data", Pcm([1, 2]))), EdgeErrorCodes.WavSampleRate },
        { "4294967295 Hz", Riff(Fmt(rate: uint.MaxValue), Chunk("data", Pcm([1, 2]))), EdgeErrorCodes.WavSampleRate },
        { "8-bit", Riff(Fmt(bits: 8), Chunk("data", [1, 2])), EdgeErrorCodes.WavUnsupportedEncoding },
        { "24-bit", Riff(Fmt(bits: 24), Chunk("data", [1, 2, 3])), EdgeErrorCodes.WavUnsupportedEncoding },
        { "0-bit", Riff(Fmt(bits: 0), Chunk("data", Pcm([1]))), EdgeErrorCodes.WavUnsupportedEncoding },
        { "IEEE float", Riff(Fmt(encoding: 3, bits: 32), Chunk("data", [0, 0, 0, 0])), EdgeErrorCodes.WavUnsupportedEncoding },
        { "odd byte count", Riff(Fmt(), Chunk("data", [1, 2, 3])), EdgeErrorCodes.WavDataMisaligned },
        { "stereo data of one and a half frames", Riff(Fmt(channels: 2), Chunk("data", Pcm([1, 2, 3]))), EdgeErrorCodes.WavDataMisaligned },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void A_hostile_file_is_refused_with_its_reason(string what, byte[] wav, string code)
    {
        var refused = Should.Throw<UnreadableItemException>(() => WavFile.ReadMono16k(wav), what);

        refused.Code.ShouldBe(code, refused.Message);
        refused.Message.ShouldNotBeNullOrWhiteSpace();
    }

    [Fact]
    public void Thousands_of_damaged_files_are_read_or_refused_but_never_throw_anything_else()
    {
        var good = Riff(Chunk("LIST", [1, 2, 3, 4, 5]), Fmt(channels: 2, rate: 22050), Chunk("data", Pcm([.. Enumerable.Range(0, 64).Select(i => (short)(i * 500))])));
        var random = new Random(20240601);
        var refused = 0;
        for (var i = 0; i < 5000; i++)
        {
            var damaged = Damage(good, random);
            try
            {
                WavFile.ReadMono16k(damaged);
            }
            catch (UnreadableItemException)
            {
                refused++;
            }
        }

        refused.ShouldBeGreaterThan(1000);
    }

    private static byte[] Damage(byte[] good, Random random)
    {
        var bytes = good[..random.Next(good.Length + 1)];
        for (var flips = random.Next(4); flips > 0 && bytes.Length > 0; flips--)
        {
            bytes[random.Next(Math.Min(bytes.Length, 60))] = (byte)random.Next(256);
        }

        return bytes;
    }

    private static byte[] Random(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static byte[] Pcm(short[] samples)
    {
        var bytes = new byte[samples.Length * 2];
        for (var i = 0; i < samples.Length; i++)
        {
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(2 * i), samples[i]);
        }

        return bytes;
    }

    private static (string Id, byte[] Body, uint? DeclaredSize) Fmt(int encoding = 1, int channels = 1, uint rate = 16000, int bits = 16)
    {
        var body = new byte[16];
        BinaryPrimitives.WriteUInt16LittleEndian(body, (ushort)encoding);
        BinaryPrimitives.WriteUInt16LittleEndian(body.AsSpan(2), (ushort)channels);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), rate);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(8), rate * (uint)channels * (uint)bits / 8);
        BinaryPrimitives.WriteUInt16LittleEndian(body.AsSpan(12), (ushort)(channels * bits / 8));
        BinaryPrimitives.WriteUInt16LittleEndian(body.AsSpan(14), (ushort)bits);
        return Chunk("fmt ", body);
    }

    private static (string Id, byte[] Body, uint? DeclaredSize) Chunk(string id, byte[] body, uint? declaredSize = null) => (id, body, declaredSize);

    /// <summary>A RIFF/WAVE file of these chunks, each padded to an even length, as a writer lays them out.</summary>
    private static byte[] Riff(params (string Id, byte[] Body, uint? DeclaredSize)[] chunks)
    {
        using var file = new MemoryStream();
        file.Write("RIFF\0\0\0\0WAVE"u8);
        Span<byte> size = stackalloc byte[4];
        foreach (var (id, body, declared) in chunks)
        {
            file.Write(System.Text.Encoding.ASCII.GetBytes(id));
            BinaryPrimitives.WriteUInt32LittleEndian(size, declared ?? (uint)body.Length);
            file.Write(size);
            file.Write(body);
            if (body.Length % 2 == 1 && declared is null)
            {
                file.WriteByte(0);
            }
        }

        var wav = file.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(wav.AsSpan(4), (uint)(wav.Length - 8));
        return wav;
    }
}
