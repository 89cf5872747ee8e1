using System.Globalization;

namespace DaprTrain.Engine.Aggregation;

public enum AggregatorKind
{
    /// <summary>The sample-weighted mean (the default; not robust: one Byzantine gradient moves it anywhere).</summary>
    Mean,

    /// <summary>Coordinate-wise median (Yin et al., ICML 2018).</summary>
    Median,

    /// <summary>Coordinate-wise trimmed mean: the f largest and f smallest values of each coordinate dropped (Yin et al.).</summary>
    TrimmedMean,

    /// <summary>Krum (Blanchard et al., NeurIPS 2017): the gradient closest to its n - f - 2 nearest neighbours.</summary>
    Krum,

    /// <summary>Multi-Krum: the mean of the m gradients with the best Krum scores.</summary>
    MultiKrum,

    /// <summary>Bulyan (El Mhamdi et al., ICML 2018): Krum selects n - 2f; per coordinate, the mean of the n - 4f values closest to the median.</summary>
    Bulyan,
}

/// <summary>
/// An aggregation rule as the user names it (<c>--aggregator</c>, <c>Job:Aggregator</c>): the kind, and the number f of
/// Byzantine contributions it is to tolerate (and m for Multi-Krum) when given. <see cref="ForWorkers"/> fills in the
/// defaults for a job of n workers and checks the rule's condition, naming it when it cannot hold.
/// </summary>
public sealed record AggregationRule(AggregatorKind Kind, int? F = null, int? M = null)
{
    public const string Grammar = "mean | median | trimmed-mean[:f] | krum[:f] | multi-krum[:f[,m]] | bulyan[:f]";

    /// <summary>The most workers a job may have (the engine's limit); bounds f and m at parsing.</summary>
    public const int MaxContributions = 64;

    public static AggregationRule Mean { get; } = new(AggregatorKind.Mean);

    public static IReadOnlyList<string> Names { get; } = ["mean", "median", "trimmed-mean", "krum", "multi-krum", "bulyan"];

    /// <summary>Rules that need whole gradient vectors (distances between them), not one coordinate at a time.</summary>
    public bool NeedsWholeVectors => Kind is AggregatorKind.Krum or AggregatorKind.MultiKrum or AggregatorKind.Bulyan;

    public bool IsMean => Kind == AggregatorKind.Mean;

    /// <summary>f as resolved (0 for rules without one).</summary>
    public int Tolerated => F ?? 0;

    public static string KindName(AggregatorKind kind) => Names[(int)kind];

    public override string ToString() => Kind switch
    {
        AggregatorKind.Mean or AggregatorKind.Median => KindName(Kind),
        AggregatorKind.MultiKrum when F is int f && M is int m => $"multi-krum:{f},{m}",
        _ when F is int f => $"{KindName(Kind)}:{f}",
        _ => KindName(Kind),
    };

    /// <summary>Parses a rule as written; an ArgumentException names what was wrong and shows the grammar.</summary>
    public static AggregationRule Parse(string? text) =>
        TryParse(text, out var rule, out string? error) ? rule : throw new ArgumentException(error);

    public static bool TryParse(string? text, out AggregationRule rule, out string? error)
    {
        rule = Mean;
        error = null;
        string spec = (text ?? "").Trim();
        int colon = spec.IndexOf(':', StringComparison.Ordinal);
        string name = colon < 0 ? spec : spec[..colon];
        string? arguments = colon < 0 ? null : spec[(colon + 1)..];
        int index = -1;
        for (int i = 0; i < Names.Count; i++) if (Names[i] == name) index = i;
        if (index < 0)
        {
            error = $"aggregator '{Printable(spec)}' is not known; aggregators: {Grammar}";
            return false;
        }
        var kind = (AggregatorKind)index;
        if (arguments is null)
        {
            rule = new AggregationRule(kind);
            return true;
        }
        if (kind is AggregatorKind.Mean or AggregatorKind.Median)
        {
            error = $"aggregator '{Printable(spec)}': {name} takes no f (it is not tuned to a number of Byzantine workers); aggregators: {Grammar}";
            return false;
        }
        var parts = arguments.Split(',');
        int allowed = kind == AggregatorKind.MultiKrum ? 2 : 1;
        if (parts.Length > allowed)
        {
            error = $"aggregator '{Printable(spec)}': {name} takes {(allowed == 1 ? "one number, f" : "f and m")}; aggregators: {Grammar}";
            return false;
        }
        if (!TryCount(parts[0], 0, out int f))
        {
            error = $"aggregator '{Printable(spec)}': f '{Printable(parts[0])}' must be a whole number from 0 to {MaxContributions}; aggregators: {Grammar}";
            return false;
        }
        int? m = null;
        if (parts.Length == 2)
        {
            if (!TryCount(parts[1], 1, out int parsed))
            {
                error = $"aggregator '{Printable(spec)}': m '{Printable(parts[1])}' must be a whole number from 1 to {MaxContributions}; aggregators: {Grammar}";
                return false;
            }
            m = parsed;
        }
        rule = new AggregationRule(kind, f, m);
        return true;
    }

    /// <summary>
    /// The rule for a job of <paramref name="workers"/> workers: f defaults to the most the classic bound for robust
    /// averaging allows, floor((n - 1) / 3) (n >= 3f + 1), lowered to what the rule itself allows; Multi-Krum's m defaults
    /// to n - f. An f or m given that breaks the rule's condition is an ArgumentException naming the condition.
    /// </summary>
    public AggregationRule ForWorkers(int workers)
    {
        if (Kind is AggregatorKind.Mean or AggregatorKind.Median) return this;
        int largest = LargestF(Kind, workers);
        if (F is int given)
        {
            if (Problem(workers, given, M) is string problem) throw new ArgumentException($"aggregator {this} with {workers} workers: {problem}");
            return Kind == AggregatorKind.MultiKrum ? this with { M = M ?? workers - given } : this;
        }
        if (largest < 0) throw new ArgumentException($"aggregator {KindName(Kind)} with {workers} workers: {Condition(Kind)} cannot hold even for f = 0 (it needs at least {MinimumFor(Kind, 0)} workers)");
        int f = Math.Min((workers - 1) / 3, largest);
        var resolved = this with { F = f };
        if (Kind != AggregatorKind.MultiKrum) return resolved;
        if (Problem(workers, f, M) is string mProblem) throw new ArgumentException($"aggregator {this} with {workers} workers: {mProblem}");
        return resolved with { M = M ?? workers - f };
    }

    /// <summary>Why the rule cannot aggregate <paramref name="count"/> contributions with this f (and m), or null when it can.</summary>
    public string? Problem(int count) => Kind is AggregatorKind.Mean or AggregatorKind.Median ? null : Problem(count, Tolerated, M);

    private string? Problem(int n, int f, int? m)
    {
        if (n < MinimumFor(Kind, f)) return $"{Condition(Kind)} does not hold for n = {n}, f = {f}";
        if (Kind == AggregatorKind.MultiKrum && m is int chosen && chosen > n - f) return $"multi-krum averages m <= n - f gradients; m = {chosen} > {n} - {f}";
        return null;
    }

    /// <summary>The rule's condition on n and f, as the papers state it.</summary>
    public static string Condition(AggregatorKind kind) => kind switch
    {
        AggregatorKind.TrimmedMean => "trimmed-mean needs 2f < n",
        AggregatorKind.Krum => "krum needs n > 2f + 2",
        AggregatorKind.MultiKrum => "multi-krum needs n > 2f + 2",
        AggregatorKind.Bulyan => "bulyan needs n >= 4f + 3",
        _ => "no condition",
    };

    private static int MinimumFor(AggregatorKind kind, int f) => kind switch
    {
        AggregatorKind.TrimmedMean => 2 * f + 1,
        AggregatorKind.Krum or AggregatorKind.MultiKrum => 2 * f + 3,
        AggregatorKind.Bulyan => 4 * f + 3,
        _ => 1,
    };

    private static int LargestF(AggregatorKind kind, int n) => kind switch
    {
        AggregatorKind.TrimmedMean => (n - 1) / 2,
        AggregatorKind.Krum or AggregatorKind.MultiKrum => n >= 3 ? (n - 3) / 2 : -1,
        AggregatorKind.Bulyan => n >= 3 ? (n - 3) / 4 : -1,
        _ => 0,
    };

    private static bool TryCount(string text, int minimum, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= minimum && value <= MaxContributions;

    private static string Printable(string text)
    {
        string shown = text.Length > 60 ? text[..60] + "..." : text;
        return new string([.. shown.Select(c => char.IsControl(c) ? '?' : c)]);
    }
}
