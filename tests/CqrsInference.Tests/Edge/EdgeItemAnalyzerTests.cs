using System.Buffers.Binary;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Edge;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace CqrsInference.Tests.Edge;

/// <summary>
/// What the edge site makes of one raw item, with the real speech and text models: a good item is
/// read, and every hostile one (in memory) comes back unreadable with its reason instead of throwing.
/// </summary>
public sealed class EdgeItemAnalyzerTests : IDisposable
{
    private static readonly ModelCatalog Catalog = ModelCatalog.Load(TestEnvironment.Manifest, TestEnvironment.ModelsDirectory);
    private static readonly DateTimeOffset Now = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private readonly EdgeItemAnalyzer _analyzer = Analyzer(new EdgeSiteOptions { Name = "site1" });

    [Fact]
    public void A_good_wav_and_a_good_png_are_read()
    {
        var wav = Wav(rate: 22050, bytes: 22050 * 2);
        var png = Png(200, 48);

        var audio = _analyzer.Analyse("a.wav", ".wav", wav, Now).ShouldBeOfType<ItemAnalysis.Read>();
        var frame = _analyzer.Analyse("b.png", ".PNG", png, Now).ShouldBeOfType<ItemAnalysis.Read>();

        (audio.Kind, audio.RawBytes).ShouldBe(("audio/wav", wav.Length));
        audio.Detections.ShouldBeEmpty("silence holds no speech");
        (frame.Kind, frame.RawBytes).ShouldBe(("image/png", png.Length));
    }

    public static TheoryData<string, string, byte[], string> Hostile()
    {
        var png = Png(320, 48);
        return new()
        {
            { "WAV with a 4-byte fmt chunk", ".wav", ShortFormatWav(), EdgeErrorCodes.WavFormatInvalid },
            { "WAV whose data chunk is cut short", ".wav", Wav(16000, 3200)[..1000], EdgeErrorCodes.WavChunkTruncated },
            { "WAV of zero channels", ".wav", Wav(16000, 3200, channels: 0), EdgeErrorCodes.WavChannels },
            { "WAV at 0 Hz", ".wav", Wav(0, 3200), EdgeErrorCodes.WavSampleRate },
            { "WAV with an odd byte count", ".wav", Wav(16000, 3201), EdgeErrorCodes.WavDataMisaligned },
            { "empty WAV file", ".wav", [], EdgeErrorCodes.NotWav },
            { "random bytes as WAV", ".wav", RandomBytes(1, 5000), EdgeErrorCodes.NotWav },
            { "empty PNG file", ".png", [], "undecodable_image" },
            { "random bytes as PNG", ".png", RandomBytes(2, 5000), "undecodable_image" },
            { "a WAV as JPEG", ".jpg", Wav(16000, 3200), "undecodable_image" },
            { "PNG signature and nothing else", ".png", png[..8], "undecodable_image" },
            { "PNG cut after its header", ".png", png[..33], "undecodable_image" },
            { "PNG cut in its image data", ".png", png[..(png.Length / 2)], "undecodable_image" },
            { "PNG of width 0", ".png", WithSize(png, 0, 48), "undecodable_image" },
            { "PNG of height 0", ".png", WithSize(png, 320, 0), "undecodable_image" },
            { "PNG claiming 100000 × 100000 pixels", ".png", WithSize(png, 100_000, 100_000), "image_too_large" },
            { "PNG claiming 30000 × 30000 pixels (a decompression bomb's header)", ".png", WithSize(png, 30_000, 30_000), "image_too_large" },
            { "PNG one pixel wider than 16384", ".png", WithSize(png, 16_385, 10), "image_too_large" },
            { "item of a kind the site does not read", ".gif", Png(10, 10), EdgeErrorCodes.UnsupportedItem },
        };
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void A_hostile_item_comes_back_unreadable_with_its_reason(string what, string extension, byte[] raw, string code)
    {
        var failed = _analyzer.Analyse("x" + extension, extension, raw, Now).ShouldBeOfType<ItemAnalysis.Unreadable>(what);

        failed.Code.ShouldBe(code, $"{what}: {failed.Reason}");
        failed.RawBytes.ShouldBe(raw.Length);
        failed.Reason.ShouldNotBeNullOrWhiteSpace();
        failed.Reason.Length.ShouldBeLessThanOrEqualTo(500);
    }

    [Fact]
    public void An_item_over_the_size_limit_is_not_read()
    {
        using var analyzer = Analyzer(new EdgeSiteOptions { Name = "site1", MaxItemBytes = 1000 });

        var failed = analyzer.Analyse("big.wav", ".wav", Wav(16000, 3200), Now).ShouldBeOfType<ItemAnalysis.Unreadable>();

        failed.Code.ShouldBe(EdgeErrorCodes.ItemTooLarge);
        analyzer.Analyse("small.wav", ".wav", Wav(16000, 640), Now).ShouldBeOfType<ItemAnalysis.Read>();
    }

    public void Dispose() => _analyzer.Dispose();

    private static EdgeItemAnalyzer Analyzer(EdgeSiteOptions options)
    {
        Catalog.TryGet(options.Model, out var vad).ShouldBeTrue();
        var detector = new SpeechDetector(new InferenceSession(Catalog.PathOf(vad.File)), options);
        return new EdgeItemAnalyzer(detector, () => TextLineReader.Create(Catalog, options.TextModel), options, NullLogger.Instance);
    }

    private static byte[] Png(int width, int height)
    {
        using var image = new Image<Rgb24>(width, height, new Rgb24(255, 255, 255));
        using var png = new MemoryStream();
        image.SaveAsPng(png);
        return png.ToArray();
    }

    /// <summary>The PNG with its IHDR width and height replaced (and the chunk's CRC made right again).</summary>
    private static byte[] WithSize(byte[] png, uint width, uint height)
    {
        var patched = png.ToArray();
        BinaryPrimitives.WriteUInt32BigEndian(patched.AsSpan(16), width);
        BinaryPrimitives.WriteUInt32BigEndian(patched.AsSpan(20), height);
        BinaryPrimitives.WriteUInt32BigEndian(patched.AsSpan(29), Crc32(patched.AsSpan(12, 17)));
        return patched;
    }

    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xffffffffu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
            }
        }

        return ~crc;
    }

    /// <summary>A 16-bit PCM WAV of silence: <paramref name="bytes"/> of data at <paramref name="rate"/>.</summary>
    private static byte[] Wav(int rate, int bytes, int channels = 1)
    {
        var wav = new byte[44 + bytes];
        "RIFF"u8.CopyTo(wav);
        BinaryPrimitives.WriteInt32LittleEndian(wav.AsSpan(4), 36 + bytes);
        "WAVEfmt "u8.CopyTo(wav.AsSpan(8));
        BinaryPrimitives.WriteInt32LittleEndian(wav.AsSpan(16), 16);
        BinaryPrimitives.WriteInt16LittleEndian(wav.AsSpan(20), 1);
        BinaryPrimitives.WriteInt16LittleEndian(wav.AsSpan(22), (short)channels);
        BinaryPrimitives.WriteInt32LittleEndian(wav.AsSpan(24), rate);
        BinaryPrimitives.WriteInt32LittleEndian(wav.AsSpan(28), rate * channels * 2);
        BinaryPrimitives.WriteInt16LittleEndian(wav.AsSpan(32), (short)(channels * 2));
        BinaryPrimitives.WriteInt16LittleEndian(wav.AsSpan(34), 16);
        "data"u8.CopyTo(wav.AsSpan(36));
        BinaryPrimitives.WriteInt32LittleEndian(wav.AsSpan(40), bytes);
        return wav;
    }

    /// <summary>The WAV that crashed the site: a <c>fmt </c> chunk of 4 bytes, then data.</summary>
    private static byte[] ShortFormatWav() =>
        [.. "RIFF"u8, 24, 0, 0, 0, .. "WAVEfmt "u8, 4, 0, 0, 0, 1, 0, 1, 0, .. "data"u8, 2, 0, 0, 0, 0, 0];

    private static byte[] RandomBytes(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
