using Microsoft.ML.OnnxRuntime;

namespace CqrsInference.Processors.Edge;

/// <summary>A stretch of speech in an audio item, in samples at 16 kHz.</summary>
internal sealed record SpeechSegment(int StartSample, int EndSample, double MeanProbability)
{
    public double StartSeconds => (double)StartSample / WavFile.TargetRate;

    public double EndSeconds => (double)EndSample / WavFile.TargetRate;
}

/// <summary>
/// Silero VAD v5 run as a stream over one item: 512 new samples per step after 64 of context, with
/// the recurrent state carried from step to step (unlike the job runner, which scores independent
/// chunks). Probabilities become segments with hysteresis (start at the threshold, end after
/// <c>MinSilence</c> below threshold − 0.15), as Silero's own <c>get_speech_timestamps</c> does.
/// </summary>
internal sealed class SpeechDetector(InferenceSession session, EdgeSiteOptions options) : IDisposable
{
    public const int WindowSamples = 512;
    private const int ContextSamples = 64;

    public IReadOnlyList<SpeechSegment> Detect(float[] samples)
    {
        var probabilities = Score(samples);
        return Segments(probabilities, options.Threshold, (int)(options.MinSilence.TotalSeconds * WavFile.TargetRate), (int)(options.MinSpeech.TotalSeconds * WavFile.TargetRate));
    }

    /// <summary>Speech probability of each 512-sample window.</summary>
    public float[] Score(float[] samples)
    {
        var windows = samples.Length / WindowSamples;
        var probabilities = new float[windows];
        var input = new float[ContextSamples + WindowSamples];
        var state = new float[2 * 128];
        var srShape = session.InputMetadata["sr"].Dimensions.Length == 0 ? Array.Empty<long>() : [1L];
        using var sampleRate = OrtValue.CreateTensorValueFromMemory(new long[] { WavFile.TargetRate }, srShape);
        using var runOptions = new RunOptions();
        for (var w = 0; w < windows; w++)
        {
            // Context: the last 64 samples of the previous window (zeros before the first).
            Array.Copy(input, WindowSamples, input, 0, ContextSamples);
            Array.Copy(samples, w * WindowSamples, input, ContextSamples, WindowSamples);
            using var audio = OrtValue.CreateTensorValueFromMemory(input, [1, input.Length]);
            using var stateIn = OrtValue.CreateTensorValueFromMemory(state, [2, 1, 128]);
            using var outputs = session.Run(
                runOptions,
                new Dictionary<string, OrtValue> { ["input"] = audio, ["state"] = stateIn, ["sr"] = sampleRate },
                ["output", "stateN"]);
            probabilities[w] = outputs[0].GetTensorDataAsSpan<float>()[0];
            outputs[1].GetTensorDataAsSpan<float>().CopyTo(state);
        }

        return probabilities;
    }

    /// <summary>Pure: window probabilities to segments (hysteresis, minimum silence and speech).</summary>
    public static IReadOnlyList<SpeechSegment> Segments(IReadOnlyList<float> probabilities, float threshold, int minSilenceSamples, int minSpeechSamples)
    {
        var segments = new List<SpeechSegment>();
        var low = Math.Max(0.01f, threshold - 0.15f);
        var inSpeech = false;
        int start = 0, silenceStart = -1, count = 0;
        double sum = 0;
        void Close(int end)
        {
            if (end - start >= minSpeechSamples)
            {
                segments.Add(new SpeechSegment(start, end, Math.Round(sum / Math.Max(1, count), 4)));
            }

            (inSpeech, silenceStart, sum, count) = (false, -1, 0, 0);
        }

        for (var w = 0; w < probabilities.Count; w++)
        {
            var p = probabilities[w];
            var at = w * WindowSamples;
            if (!inSpeech)
            {
                if (p >= threshold)
                {
                    (inSpeech, start, silenceStart, sum, count) = (true, at, -1, p, 1);
                }

                continue;
            }

            sum += p;
            count++;
            if (p >= threshold)
            {
                silenceStart = -1;
            }
            else if (p < low)
            {
                if (silenceStart < 0)
                {
                    silenceStart = at;
                }

                if (at + WindowSamples - silenceStart >= minSilenceSamples)
                {
                    Close(silenceStart);
                }
            }
        }

        if (inSpeech)
        {
            Close(probabilities.Count * WindowSamples);
        }

        return segments;
    }

    public void Dispose() => session.Dispose();
}
