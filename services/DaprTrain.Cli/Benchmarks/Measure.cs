using System.Diagnostics;

namespace DaprTrain.Cli.Benchmarks;

internal static class Measure
{
    /// <summary>Median seconds per call over <paramref name="rounds"/> rounds of <paramref name="calls"/> calls, after a warm-up round.</summary>
    public static double SecondsPerCall(Action action, int calls, int rounds = 7)
    {
        for (int i = 0; i < calls; i++) action();
        var samples = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < calls; i++) action();
            samples[r] = watch.Elapsed.TotalSeconds / calls;
        }
        Array.Sort(samples);
        return samples[rounds / 2];
    }

    public static string Micros(double seconds) => $"{seconds * 1e6:F1} µs";
}
