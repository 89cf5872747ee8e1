using System.Globalization;

namespace DaprTrain.Engine.Compression;

public enum CompressionKind
{
    /// <summary>float32 as before: 4 bytes a value, lossless.</summary>
    None,

    /// <summary>IEEE half precision: 2 bytes a value; values beyond ±65504 are clamped (error feedback keeps the rest).</summary>
    Fp16,

    /// <summary>8-bit uniform per block of <see cref="Int8Codec.BlockSize"/> values, scale = max |x| / 127: about 1 byte a value.</summary>
    Int8,

    /// <summary>The k = ratio x n largest magnitudes, sent as (index, value) pairs: 8 bytes per kept value.</summary>
    TopK,

    /// <summary>QSGD (Alistarh et al., NeurIPS 2017): stochastic rounding of |x| / ||bucket|| to s levels; 4 or 8 bits a value.</summary>
    Qsgd,
}

/// <summary>
/// A gradient codec as the user names it (<c>--compress</c>, <c>Job:Compress</c>): none, fp16, int8, topk:RATIO
/// (0 &lt; RATIO &lt;= 1, e.g. topk:0.01) or qsgd:LEVELS (1 to 127). fp16, int8 and top-k run with error feedback
/// (<see cref="GradientCompressor"/>): what they drop in one round is added to the next round's gradient. QSGD is
/// unbiased and runs without (<see cref="GradientCompressor.FeedsBackError"/>).
/// </summary>
public sealed record CompressionSpec(CompressionKind Kind, double Ratio = 0, int Levels = 0)
{
    public const string Grammar = "none | fp16 | int8 | topk:RATIO (0 < RATIO <= 1) | qsgd:LEVELS (1..127)";

    public static CompressionSpec None { get; } = new(CompressionKind.None);

    public bool IsNone => Kind == CompressionKind.None;

    /// <summary>
    /// Top-k's aggregate is sparse: a zero coordinate was not sent this round, it is not a zero slope. The optimizer then
    /// steps lazily (<see cref="DaprTrain.Training.Trainer.ApplySparseGradient"/>): a coordinate that was not sent keeps its
    /// weight and its optimizer state, as PyTorch's SparseAdam does. Otherwise Adam decays its moments through every round
    /// a coordinate is silent and then normalises the burst that error feedback delivers to a full step, and its momentum
    /// keeps moving the weight for tens of rounds after. Measured (BENCHMARKS.md, Fashion-MNIST, 4 p2p workers, Adam):
    /// -4.43 points after one epoch and -1.98 after five with dense steps, -2.98 and -1.19 with lazy ones.
    /// </summary>
    public bool SparseAggregate => Kind == CompressionKind.TopK;

    public override string ToString() => Kind switch
    {
        CompressionKind.None => "none",
        CompressionKind.Fp16 => "fp16",
        CompressionKind.Int8 => "int8",
        CompressionKind.TopK => "topk:" + Ratio.ToString("R", CultureInfo.InvariantCulture),
        _ => "qsgd:" + Levels.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>How many values top-k keeps of <paramref name="count"/>: ceil(ratio x count), at least 1 (of a non-empty vector).</summary>
    public int KeptOf(int count) => count == 0 ? 0 : (int)Math.Clamp(Math.Ceiling(Ratio * count), 1, count);

    public static CompressionSpec Parse(string? text) =>
        TryParse(text, out var spec, out string? error) ? spec : throw new ArgumentException(error);

    public static bool TryParse(string? text, out CompressionSpec spec, out string? error)
    {
        spec = None;
        error = null;
        string value = (text ?? "").Trim();
        int colon = value.IndexOf(':', StringComparison.Ordinal);
        string name = colon < 0 ? value : value[..colon];
        string? argument = colon < 0 ? null : value[(colon + 1)..];
        switch (name)
        {
            case "none" or "fp16" or "int8" when argument is null:
                spec = name switch { "none" => None, "fp16" => new(CompressionKind.Fp16), _ => new(CompressionKind.Int8) };
                return true;
            case "none" or "fp16" or "int8":
                error = $"compression '{Printable(value)}': {name} takes no argument; codecs: {Grammar}";
                return false;
            case "topk":
                if (argument is null || !double.TryParse(argument, NumberStyles.Float, CultureInfo.InvariantCulture, out double ratio) || !(ratio > 0 && ratio <= 1))
                {
                    error = $"compression '{Printable(value)}': topk needs a ratio above 0 and at most 1 (topk:0.01 keeps 1%); codecs: {Grammar}";
                    return false;
                }
                spec = new(CompressionKind.TopK, Ratio: ratio);
                return true;
            case "qsgd":
                if (argument is null || !int.TryParse(argument, NumberStyles.None, CultureInfo.InvariantCulture, out int levels) || levels is < 1 or > QsgdCodec.MaxLevels)
                {
                    error = $"compression '{Printable(value)}': qsgd needs a number of levels from 1 to {QsgdCodec.MaxLevels} (qsgd:15); codecs: {Grammar}";
                    return false;
                }
                spec = new(CompressionKind.Qsgd, Levels: levels);
                return true;
            default:
                error = $"compression '{Printable(value)}' is not known; codecs: {Grammar}";
                return false;
        }
    }

    /// <summary>A value as it may be shown in a message: control characters escaped, at most 64 characters.</summary>
    private static string Printable(string text)
    {
        var shown = string.Concat(text.Take(64).Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
        return text.Length > 64 ? shown + "..." : shown;
    }
}
