using DaprTrain.Coordination;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Faults;
using DaprTrain.Simulation;
using DaprTrain.Engine.Storage;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using DaprTrain.Training.Parameters;
using Microsoft.Extensions.Logging.Abstractions;

namespace DaprTrain.Cli.Benchmarks;

/// <summary>
/// The embedded exchange against the memcpy bound of the bytes it moves, and how round time scales with N.
/// "Exchange" is the wall time of encoding, the in-process broker's delivery (decode, checksum, validation)
/// and aggregation, without the forward/backward pass and without the optimizer step.
/// </summary>
internal sealed class EngineBenchmarks(TextWriter output, bool quick)
{
    public async Task RunAsync()
    {
        using var data = TrainingData.Synthetic(8192, seed: 1, holdoutCount: 256);
        int rounds = quick ? 10 : 100;
        // One unrecorded job first, so that the JIT has optimised the engine's hot paths before anything is timed.
        await RunAsync(data, Topology.PeerToPeerScatter, 4, quick ? 5 : 60);
        var results = new List<(Topology Topology, int Workers, RunResult Result)>();
        foreach (var topology in new[] { Topology.ParameterServer, Topology.PeerToPeer, Topology.PeerToPeerScatter })
        {
            foreach (int workers in new[] { 2, 4, 8 }) results.Add((topology, workers, await RunAsync(data, topology, workers, rounds)));
        }

        output.WriteLine("## Embedded exchange against the memcpy bound (MLP, 101,770 parameters)");
        output.WriteLine();
        output.WriteLine("Per round, median over the run (the first round excluded as warm-up). Bytes moved: every message's bytes once when published and once per delivery. The memcpy bound copies that many bytes in message-sized pieces between distinct managed buffers (as the exchange touches them), measured in the same run.");
        output.WriteLine();
        output.WriteLine("| topology | N | bytes moved per round | exchange per round | memcpy of those bytes | exchange / memcpy | memcpy, caches flushed first | exchange / that |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var (topology, workers, result) in results.Where(r => r.Topology != Topology.ParameterServer)) ExchangeRow(topology, workers, result);
        output.WriteLine();

        output.WriteLine("## Round time against N");
        output.WriteLine();
        output.WriteLine("Median per round. Virtual: measured compute of the slowest worker + the network model (1 ms per hop, 1 Gbit/s per link) + aggregation; wall: this process, all nodes on one machine.");
        output.WriteLine();
        output.WriteLine("| topology | N=2 virtual | N=4 virtual | N=8 virtual | N=2 wall | N=4 wall | N=8 wall | bytes per worker per round (N=8, sent + received) |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var group in results.GroupBy(r => r.Topology))
        {
            var byN = group.ToDictionary(g => g.Workers, g => g.Result);
            string Virtual(int n) => $"{Median(byN[n].Rounds.Skip(1).Select(r => r.EndMs - r.StartMs)):F2} ms";
            string Wall(int n) => $"{byN[n].WallMs / byN[n].Rounds.Count:F2} ms";
            var eight = byN[8];
            output.WriteLine($"| {group.Key.Name()} | {Virtual(2)} | {Virtual(4)} | {Virtual(8)} | {Wall(2)} | {Wall(4)} | {Wall(8)} | " +
                             $"{(eight.BytesPerWorkerPerRound(true) + eight.BytesPerWorkerPerRound(false)) / 1e6:F2} MB |");
        }
        output.WriteLine();
    }

    /// <summary>The exchange table again for the residual CNN, whose 6.9 MB gradient is 17x the MLP's.</summary>
    public async Task RunResNetAsync()
    {
        using var data = TrainingData.Synthetic(2048, seed: 1, holdoutCount: 64);
        // The same unrecorded MLP job as before the MLP's table warms the engine's code up. Batch 8 keeps the residual CNN's
        // forward and backward passes short (the gradient's size does not depend on the batch): the table costs seconds.
        await RunAsync(data, Topology.PeerToPeerScatter, 4, quick ? 5 : 60);
        int resnetRounds = quick ? 4 : 12;
        var resnet = new List<(Topology Topology, int Workers, RunResult Result)>();
        foreach (var topology in new[] { Topology.PeerToPeer, Topology.PeerToPeerScatter })
        {
            // A 60 s round deadline: at the default 250 ms (virtual) the network model's 1 Gbit/s links cannot carry 7 peers'
            // 6.9 MB gradients (386 ms at N=8), rounds close without them, and the table would time the fallback, not the exchange.
            foreach (int workers in new[] { 4, 8 })
            {
                resnet.Add((topology, workers, await RunAsync(data, topology, workers, resnetRounds, "resnet", batch: 8, roundDeadlineMs: 60_000)));
            }
        }
        output.WriteLine($"## Embedded exchange against the memcpy bound (resnet, {resnet[0].Result.ParameterCount:N0} parameters, batch 8)");
        output.WriteLine();
        output.WriteLine($"As above, over {resnetRounds} rounds per job (the first excluded).");
        output.WriteLine();
        output.WriteLine("| topology | N | bytes moved per round | exchange per round | memcpy of those bytes | exchange / memcpy | memcpy, caches flushed first | exchange / that |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var (topology, workers, result) in resnet) ExchangeRow(topology, workers, result);
        output.WriteLine();
    }

    private void ExchangeRow(Topology topology, int workers, RunResult result)
    {
        var steady = result.Rounds.Skip(1).ToList();
        double exchangeMs = Median(steady.Select(r => r.ExchangeWallMs));
        long bytes = (long)Median(steady.Select(r => (double)r.BytesMoved));
        int messageBytes = result.ParameterCount * 4 / (topology == Topology.PeerToPeerScatter ? workers : 1);
        double memcpyMs = MemcpyMs(bytes, messageBytes);
        double coldMs = MemcpyMs(bytes, messageBytes, flushFirst: true);
        output.WriteLine($"| {topology.Name()} | {workers} | {bytes / 1e6:F2} MB | {exchangeMs:F3} ms | {memcpyMs:F3} ms | {exchangeMs / memcpyMs:F2}x | {coldMs:F3} ms | {exchangeMs / coldMs:F2}x |");
    }

    /// <summary>One embedded job of the MLP (Adam 1e-3, seed 1, no faults), evaluated once at its end; the pytorch section runs the same.</summary>
    internal static async Task<RunResult> RunAsync(TrainingData data, Topology topology, int workers, int rounds, string model = "mlp", int batch = 64,
        double roundDeadlineMs = 250)
    {
        var options = new JobOptions($"bench-{topology.Name()}-{workers}", topology, workers,
            new TrainerOptions(model, new OptimizerSettings(OptimizerKind.Adam, 1e-3), batch, 1),
            rounds, FaultPlan.None, new NetworkModel(), RoundDeadlineMs: roundDeadlineMs, EvaluateEvery: rounds,
            // The data path against memcpy, as before messages were signed; what signing adds is the signing section's.
            SignMessages: false);
        using var job = new EmbeddedJob(options, data, new InMemoryCheckpointStore(), PriceTable.Default(), NullLoggerFactory.Instance);
        return await job.RunAsync();
    }

    /// <summary>
    /// Copies <paramref name="bytes"/> as the exchange holds them: in message-sized pieces between distinct buffers.
    /// Hot: the same buffers copied again and again, so they sit in cache (the strict bound the goal is judged on).
    /// <paramref name="flushFirst"/>: a buffer larger than the last-level cache is written before each timed copy, as
    /// a round's forward and backward pass evict what the exchange then reads.
    /// </summary>
    private static readonly Lazy<byte[]> Evict = new(() => new byte[64 << 20]);

    private static double MemcpyMs(long bytes, int messageBytes, bool flushFirst = false)
    {
        int pieces = (int)Math.Max(1, bytes / messageBytes);
        var from = Enumerable.Range(0, pieces).Select(_ => new byte[messageBytes]).ToArray();
        var to = Enumerable.Range(0, pieces).Select(_ => new byte[messageBytes]).ToArray();
        foreach (var buffer in from) Random.Shared.NextBytes(buffer);
        if (!flushFirst)
        {
            return Measure.SecondsPerCall(() =>
            {
                for (int i = 0; i < pieces; i++) from[i].AsSpan().CopyTo(to[i]);
            }, 20) * 1000;
        }
        var samples = new double[15];
        for (int r = 0; r < samples.Length; r++)
        {
            Evict.Value.AsSpan().Fill((byte)r);
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            for (int i = 0; i < pieces; i++) from[i].AsSpan().CopyTo(to[i]);
            samples[r] = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        }
        return Median(samples);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        return sorted.Length == 0 ? 0 : sorted[sorted.Length / 2];
    }
}
