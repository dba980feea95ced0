using System.Text;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using Microsoft.ML.OnnxRuntime;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace CqrsInference.Processors.Runtime;

/// <summary>
/// PP-OCRv4 text-line recognition. Input: one image (PNG, JPEG, BMP or GIF, base64) of a single line
/// of text. The image is resized to height 48 keeping its aspect ratio, normalized to [-1, 1] in
/// BGR order as PaddleOCR does, and right-padded to its width rounded up to <see cref="WidthStep"/>;
/// only images of the same padded width run together (a batch of several widths is one model call
/// per width), so a job's answer depends on its own image, never on what its batch-mates, perhaps
/// another tenant's, look like: padded to the widest of the batch, the same line read with
/// confidence 0.992 alone and 0.950 next to a wide image, and a backtest of a version against its
/// own answers found "differences". The output [B, T, 6625] is decoded greedily (CTC: drop blanks
/// and repeats) with the model's vocabulary.
/// A version may preprocess differently (<see cref="Preprocessing"/>, from the manifest's <c>options</c>):
/// with <c>grayscale</c> each pixel's three channels get its luminance (ITU-R BT.601) first, the
/// same weights reading a colourless image.
/// </summary>
internal sealed class OcrRunner(InferenceSession session, string device, string[] vocabulary, OcrRunner.Preprocessing? preprocessing = null)
    : BatchingRunner<OcrRunner.LineImage>
{
    /// <summary>How a version prepares its images: <paramref name="Grayscale"/> (option <c>grayscale</c>: <c>true</c>/<c>false</c>).</summary>
    public sealed record Preprocessing(bool Grayscale)
    {
        public static readonly IReadOnlyList<string> Keys = ["grayscale"];

        /// <summary>The version's preprocessing from its manifest options; throws naming a key or value it does not know.</summary>
        public static Preprocessing Of(Commands.Models.ModelDefinition model)
        {
            var options = model.Options ?? new Dictionary<string, string>();
            if (options.Keys.FirstOrDefault(k => !Keys.Contains(k)) is { } unknown)
            {
                throw new InvalidOperationException($"Version '{model.Version}' of model '{model.Name}' has option '{unknown}'; runner ppocr-rec takes: {string.Join(", ", Keys)}.");
            }

            if (options.TryGetValue("grayscale", out var text) && !bool.TryParse(text, out _))
            {
                throw new InvalidOperationException($"Version '{model.Version}' of model '{model.Name}' has grayscale '{text}'; it is true or false.");
            }

            return new Preprocessing(options.TryGetValue("grayscale", out var gray) && bool.Parse(gray));
        }
    }

    private readonly bool _grayscale = preprocessing?.Grayscale ?? false;

    public const int Height = 48;
    public const int MaxWidth = 1600;

    /// <summary>The most pixels an input image may have (a 4,096 × 4,096 square: 48 MB decoded).</summary>
    public const long MaxImagePixels = 4096L * 4096;

    /// <summary>The longest side an input image may have.</summary>
    public const int MaxImageSide = 16_384;

    /// <summary>The formats the model reads, a GIF's first frame only (an animation's other frames are not text to read).</summary>
    private static readonly Configuration Formats = CreateFormats();

    public sealed record LineImage(int Width, float[] Chw);

    private static Configuration CreateFormats()
    {
        var formats = new Configuration(
            new SixLabors.ImageSharp.Formats.Png.PngConfigurationModule(),
            new SixLabors.ImageSharp.Formats.Jpeg.JpegConfigurationModule(),
            new SixLabors.ImageSharp.Formats.Bmp.BmpConfigurationModule(),
            new SixLabors.ImageSharp.Formats.Gif.GifConfigurationModule());
        formats.ImageFormatsManager.SetDecoder(
            SixLabors.ImageSharp.Formats.Gif.GifFormat.Instance,
            new SixLabors.ImageSharp.Formats.Gif.GifDecoder { DecodingMode = SixLabors.ImageSharp.Metadata.FrameDecodingMode.First });
        return formats;
    }

    public override string Device => device;

    /// <summary>Loads the vocabulary file: index 0 is the CTC blank, the last entry is the space.</summary>
    public static string[] LoadVocabulary(string path) =>
        ["", .. File.ReadAllLines(path, Encoding.UTF8), " "];

    public override void WarmUp() => RunBatch([new LineImage(320, new float[3 * Height * 320])], CancellationToken.None);

    protected override LineImage Prepare(JobCommand job)
    {
        var encoded = TensorJson.ReadString(job.Input("image"));
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(encoded);
        }
        catch (FormatException)
        {
            throw new InvalidInputException("undecodable_image", "Input 'image' is not valid base64.");
        }

        Image<Rgb24> image;
        try
        {
            // The size from the header first: a few hundred kilobytes of PNG can declare 30,000 ×
            // 30,000 pixels of nothing, which decoded would take gigabytes.
            var info = Image.Identify(Formats, bytes, out _)
                ?? throw new InvalidInputException("undecodable_image", "Input 'image' is not a PNG, JPEG, BMP or GIF image.");
            if (info.Width > MaxImageSide || info.Height > MaxImageSide || (long)info.Width * info.Height > MaxImagePixels)
            {
                throw new InvalidInputException("image_too_large",
                    $"Input 'image' is {info.Width} × {info.Height} pixels; the model reads images of at most {MaxImagePixels:N0} pixels and {MaxImageSide:N0} a side (a line of text, resized to {Height} pixels high).");
            }

            image = Image.Load<Rgb24>(Formats, bytes);
        }
        catch (Exception e) when (e is ImageFormatException or NotSupportedException or ArgumentException or InvalidMemoryOperationException)
        {
            throw new InvalidInputException("undecodable_image", $"Input 'image' is not a PNG, JPEG, BMP or GIF image: {e.Message}");
        }

        using (image)
        {
            var width = Math.Clamp((int)Math.Ceiling(Height * (double)image.Width / image.Height), 8, MaxWidth);
            image.Mutate(x => x.Resize(width, Height));
            var chw = new float[3 * Height * width];
            image.ProcessPixelRows(rows =>
            {
                for (var y = 0; y < Height; y++)
                {
                    var row = rows.GetRowSpan(y);
                    for (var x = 0; x < width; x++)
                    {
                        var p = _grayscale ? Gray(row[x]) : row[x];
                        chw[(0 * Height + y) * width + x] = (p.B / 255f - 0.5f) / 0.5f;
                        chw[(1 * Height + y) * width + x] = (p.G / 255f - 0.5f) / 0.5f;
                        chw[(2 * Height + y) * width + x] = (p.R / 255f - 0.5f) / 0.5f;
                    }
                }
            });
            return new LineImage(width, chw);
        }
    }

    private static Rgb24 Gray(Rgb24 p)
    {
        var y = (byte)Math.Clamp(Math.Round((0.299 * p.R) + (0.587 * p.G) + (0.114 * p.B)), 0, 255);
        return new Rgb24(y, y, y);
    }

    /// <summary>The step images are padded to: at most 63 columns of padding, and few widths in a batch of similar lines.</summary>
    public const int WidthStep = 64;

    /// <summary>The width an image of <paramref name="width"/> columns is read at.</summary>
    public static int PaddedWidth(int width) => (width + WidthStep - 1) / WidthStep * WidthStep;

    protected override IReadOnlyList<IReadOnlyList<Tensor>> RunBatch(IReadOnlyList<LineImage> inputs, CancellationToken abort)
    {
        var results = new IReadOnlyList<Tensor>[inputs.Count];
        foreach (var sameWidth in Enumerable.Range(0, inputs.Count).GroupBy(i => PaddedWidth(inputs[i].Width)))
        {
            var members = sameWidth.ToList();
            var outputs = RunPadded([.. members.Select(i => inputs[i])], sameWidth.Key, abort);
            for (var k = 0; k < members.Count; k++)
            {
                results[members[k]] = outputs[k];
            }
        }

        return results;
    }

    private List<IReadOnlyList<Tensor>> RunPadded(IReadOnlyList<LineImage> inputs, int width, CancellationToken abort)
    {
        var batch = new float[inputs.Count * 3 * Height * width];
        for (var b = 0; b < inputs.Count; b++)
        {
            var image = inputs[b];
            for (var c = 0; c < 3; c++)
            {
                for (var y = 0; y < Height; y++)
                {
                    Array.Copy(image.Chw, (c * Height + y) * image.Width, batch, ((b * 3 + c) * Height + y) * width, image.Width);
                }
            }
        }

        using var input = OrtValue.CreateTensorValueFromMemory(batch, [inputs.Count, 3, Height, width]);
        using var outputs = OrtRuns.Run(session, new Dictionary<string, OrtValue> { ["x"] = input }, [session.OutputNames[0]], abort);
        var probabilities = outputs[0].GetTensorDataAsSpan<float>();
        var shape = outputs[0].GetTensorTypeAndShape().Shape;
        int steps = (int)shape[1], classes = (int)shape[2];
        var results = new List<IReadOnlyList<Tensor>>(inputs.Count);
        for (var b = 0; b < inputs.Count; b++)
        {
            var (text, confidence) = Decode(probabilities.Slice(b * steps * classes, steps * classes), steps, classes);
            results.Add([TensorJson.Bytes("text", text), TensorJson.Fp32("confidence", [1], [confidence])]);
        }

        return results;
    }

    private (string Text, float Confidence) Decode(ReadOnlySpan<float> probabilities, int steps, int classes)
    {
        var text = new StringBuilder();
        float sum = 0;
        var kept = 0;
        var previous = -1;
        for (var t = 0; t < steps; t++)
        {
            var row = probabilities.Slice(t * classes, classes);
            var best = 0;
            for (var c = 1; c < classes; c++)
            {
                if (row[c] > row[best])
                {
                    best = c;
                }
            }

            if (best != 0 && best != previous && best < vocabulary.Length)
            {
                text.Append(vocabulary[best]);
                sum += row[best];
                kept++;
            }

            previous = best;
        }

        return (text.ToString().Trim(), kept == 0 ? 0 : sum / kept);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            session.Dispose();
        }
    }
}
