using System.Diagnostics;

namespace DaprTrain.Cli.Benchmarks;

internal static class Measure
{
    /// <summary>
    /// Median seconds per call over <paramref name="rounds"/> rounds of <paramref name="calls"/> calls, after a warm-up
    /// of at least that many calls and half a second: the JIT recompiles a hot method with full optimisation only
    /// after it has been called for about 100 ms, and the steady state is what a long training run sees.
    /// </summary>
    public static double SecondsPerCall(Action action, int calls, int rounds = 7)
    {
        var warmUp = Stopwatch.StartNew();
        for (int i = 0; i < calls || warmUp.ElapsedMilliseconds < 500; i++) action();
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

    /// <summary>
    /// As <see cref="SecondsPerCall"/>, but the process's CPU time (user + system, all threads: the GC's included) per
    /// call instead of wall time. For single-threaded code on a shared machine: time spent descheduled while other
    /// processes run is not counted, page faults and zeroing of new memory are.
    /// </summary>
    public static double CpuSecondsPerCall(Action action, int calls, int rounds = 7)
    {
        var process = Process.GetCurrentProcess();
        var warmUp = Stopwatch.StartNew();
        for (int i = 0; i < calls || warmUp.ElapsedMilliseconds < 500; i++) action();
        var samples = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            process.Refresh();
            var before = process.TotalProcessorTime;
            for (int i = 0; i < calls; i++) action();
            process.Refresh();
            samples[r] = (process.TotalProcessorTime - before).TotalSeconds / calls;
        }
        Array.Sort(samples);
        return samples[rounds / 2];
    }

    public static string Micros(double seconds) => $"{seconds * 1e6:F1} µs";
}
