using System.Globalization;
using System.Text.RegularExpressions;
using DaprTrain.Training;

namespace DaprTrain.Engine.Aggregation;

public enum AttackKind
{
    /// <summary>Sends -S x its gradient (SPIRT's attack code: S = 10).</summary>
    SignFlip,

    /// <summary>Sends Gaussian noise instead of its gradient (SPIRT: sigma 100).</summary>
    Gaussian,

    /// <summary>Adds Gaussian noise to its gradient.</summary>
    Noise,

    /// <summary>Trains on its batch with every label y turned into 9 - y (classes - 1 - y).</summary>
    LabelFlip,

    /// <summary>"A little is enough" (Baruch et al., NeurIPS 2019): mean - z x std of the honest gradients, coordinate-wise.</summary>
    Alie,

    /// <summary>Sends zeros.</summary>
    Zero,
}

/// <summary>
/// What a Byzantine worker does to the gradient it sends: an insider, with a valid identity, that computes its honest
/// gradient and replaces or bends it before it is sent (and, when messages are signed, before it signs). Deterministic:
/// random attacks draw from the job's seed, the worker and the round.
/// </summary>
public sealed partial record GradientAttack(AttackKind Kind, double Parameter, long FromRound = 1)
{
    public const string Grammar = "signflip[:S] | gaussian[:sigma] | noise[:sigma] | labelflip | alie[:z] | zero, optionally @round=R";

    public const double DefaultSignFlipScale = 10;
    public const double DefaultGaussianSigma = 100;
    public const double DefaultNoiseSigma = 1;

    /// <summary>The largest scale or sigma an attack may name: beyond it float32 gradients overflow to infinity, which every receiver drops anyway.</summary>
    public const double MaxParameter = 1e6;

    public static IReadOnlyList<string> Names { get; } = ["signflip", "gaussian", "noise", "labelflip", "alie", "zero"];

    /// <summary>ALIE without a z: the paper's z_max for the round's n and f (see <see cref="AlieZ"/>).</summary>
    public bool UsesPaperZ => Kind == AttackKind.Alie && double.IsNaN(Parameter);

    public bool NeedsHonestGradients => Kind == AttackKind.Alie;

    public bool FlipsLabels => Kind == AttackKind.LabelFlip;

    public bool ActiveIn(long round) => round >= FromRound;

    public override string ToString()
    {
        string name = Names[(int)Kind];
        string parameter = Kind is AttackKind.LabelFlip or AttackKind.Zero || UsesPaperZ ? "" : ":" + Parameter.ToString(CultureInfo.InvariantCulture);
        return name + parameter + (FromRound > 1 ? $"@round={FromRound}" : "");
    }

    /// <summary>Parses <c>kind[:parameter][@round=R]</c>; an ArgumentException says what was wrong.</summary>
    public static GradientAttack Parse(string? text)
    {
        string spec = (text ?? "").Trim();
        var match = Pattern().Match(spec);
        if (!match.Success) throw new ArgumentException($"attack '{Printable(spec)}' is not one of {Grammar}");
        string name = match.Groups["kind"].Value;
        int index = -1;
        for (int i = 0; i < Names.Count; i++) if (Names[i] == name) index = i;
        if (index < 0) throw new ArgumentException($"attack '{Printable(name)}' is not known; attacks: {Grammar}");
        var kind = (AttackKind)index;
        long round = 1;
        if (match.Groups["round"].Success)
        {
            if (!long.TryParse(match.Groups["round"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out round) || round < 1)
            {
                throw new ArgumentException($"attack '{Printable(spec)}': round '{Printable(match.Groups["round"].Value)}' must be a whole number of at least 1");
            }
        }
        double parameter = kind switch
        {
            AttackKind.SignFlip => DefaultSignFlipScale,
            AttackKind.Gaussian => DefaultGaussianSigma,
            AttackKind.Noise => DefaultNoiseSigma,
            AttackKind.Alie => double.NaN,
            _ => 0,
        };
        if (match.Groups["parameter"].Success)
        {
            string text2 = match.Groups["parameter"].Value;
            if (kind is AttackKind.LabelFlip or AttackKind.Zero) throw new ArgumentException($"attack '{Printable(spec)}': {name} takes no parameter");
            if (!double.TryParse(text2, NumberStyles.Float, CultureInfo.InvariantCulture, out parameter) || !double.IsFinite(parameter))
            {
                throw new ArgumentException($"attack '{Printable(spec)}': '{Printable(text2)}' is not a number");
            }
            switch (kind)
            {
                case AttackKind.SignFlip when !(parameter > 0 && parameter <= MaxParameter):
                    throw new ArgumentException($"attack '{Printable(spec)}': the scale S must be above 0 and at most {MaxParameter:G} (signflip:10 sends -10 x the gradient)");
                case AttackKind.Gaussian or AttackKind.Noise when !(parameter > 0 && parameter <= MaxParameter):
                    throw new ArgumentException($"attack '{Printable(spec)}': sigma must be above 0 and at most {MaxParameter:G}");
                case AttackKind.Alie when !(parameter >= 0 && parameter <= 100):
                    throw new ArgumentException($"attack '{Printable(spec)}': z must be from 0 to 100 (the number of honest standard deviations below the mean)");
            }
        }
        return new GradientAttack(kind, parameter, round);
    }

    /// <summary>
    /// Bends the worker's honest gradient in place (every kind but label flipping, which acts on the batch, and ALIE,
    /// which needs the honest gradients: <see cref="ApplyAlie"/>).
    /// </summary>
    public void Apply(Span<float> gradient, ulong seed, string worker, long round)
    {
        switch (Kind)
        {
            case AttackKind.SignFlip:
            {
                float factor = (float)-Parameter;
                for (int i = 0; i < gradient.Length; i++) gradient[i] *= factor;
                break;
            }
            case AttackKind.Zero:
                gradient.Clear();
                break;
            case AttackKind.Gaussian:
            case AttackKind.Noise:
            {
                var random = SplitMix64.Derive(seed, "attack:" + worker, round);
                float sigma = (float)Parameter;
                if (Kind == AttackKind.Gaussian) gradient.Clear();
                for (int i = 0; i < gradient.Length; i++) gradient[i] += sigma * random.NextGaussian();
                break;
            }
            default:
                throw new InvalidOperationException($"{this} is not applied to a computed gradient");
        }
    }

    /// <summary>
    /// ALIE: writes mean - z x std of the honest gradients (per coordinate, the sample standard deviation) into
    /// <paramref name="gradient"/>. Without a z given, z is the paper's z_max for n workers of which f collude.
    /// </summary>
    public void ApplyAlie(Span<float> gradient, IReadOnlyList<ReadOnlyMemory<float>> honest, int workers, int colluding)
    {
        if (Kind != AttackKind.Alie) throw new InvalidOperationException($"{this} is not ALIE");
        if (honest.Count == 0) throw new ArgumentException("ALIE needs at least one honest gradient", nameof(honest));
        float z = (float)(UsesPaperZ ? AlieZ(workers, colluding) : Parameter);
        int count = honest.Count;
        for (int i = 0; i < gradient.Length; i++)
        {
            double sum = 0;
            for (int h = 0; h < count; h++) sum += honest[h].Span[i];
            double mean = sum / count;
            double squares = 0;
            for (int h = 0; h < count; h++)
            {
                double d = honest[h].Span[i] - mean;
                squares += d * d;
            }
            double std = count > 1 ? Math.Sqrt(squares / (count - 1)) : 0;
            gradient[i] = (float)(mean - z * std);
        }
    }

    /// <summary>
    /// Baruch et al. (2019), Algorithm 1: s = floor(n / 2 + 1) - f workers must be won over, and z_max is the largest z with
    /// Phi(z) &lt; (n - s) / n. It is 0 (the attack sends the honest mean) when (n - s) / n is at most one half, as for
    /// 1 of 4 workers; never below 0.
    /// </summary>
    public static double AlieZ(int workers, int colluding)
    {
        int s = workers / 2 + 1 - colluding;
        double p = (double)(workers - s) / workers;
        if (p <= 0.5) return 0;
        return p >= 1 ? 3 : InverseNormal(p);
    }

    /// <summary>The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).</summary>
    public static double InverseNormal(double p)
    {
        if (!(p > 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "a probability strictly between 0 and 1");
        double[] a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
        double[] b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
        double[] c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
        double[] d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
        const double low = 0.02425;
        if (p < low)
        {
            double q = Math.Sqrt(-2 * Math.Log(p));
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        }
        if (p > 1 - low) return -InverseNormal(1 - p);
        double r = p - 0.5, t = r * r;
        return (((((a[0] * t + a[1]) * t + a[2]) * t + a[3]) * t + a[4]) * t + a[5]) * r / (((((b[0] * t + b[1]) * t + b[2]) * t + b[3]) * t + b[4]) * t + 1);
    }

    private static string Printable(string text)
    {
        string shown = text.Length > 60 ? text[..60] + "..." : text;
        return new string([.. shown.Select(ch => char.IsControl(ch) ? '?' : ch)]);
    }

    [GeneratedRegex(@"^(?<kind>[a-z]+)(:(?<parameter>[^@]*))?(@round=(?<round>[^@]*))?$")]
    private static partial Regex Pattern();
}
