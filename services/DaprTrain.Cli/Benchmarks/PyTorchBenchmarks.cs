using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using DaprTrain.Coordination;
using DaprTrain.Simulation;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Faults;
using DaprTrain.Engine.Storage;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using DaprTrain.Training.Parameters;
using Microsoft.Extensions.Logging.Abstractions;

namespace DaprTrain.Cli.Benchmarks;

/// <summary>
/// Issue 16 part 3: PyTorch DDP (tools/pytorch/ddp_bench.py on Debian's python3-torch, gloo, one thread per process) as
/// the baseline, beside the embedded mode, in one run: the MLP, batch 64 per worker, Adam, the same training rows and
/// held-out set, at N = 2, 4 and 8 (or the counts --workers names). DDP is skipped, saying why, without /usr/bin/python3 and torch.
/// </summary>
internal sealed class PyTorchBenchmarks(TextWriter output, bool quick, IReadOnlyList<int> workerCounts)
{
    private const string Python = "/usr/bin/python3";
    private const int Batch = 64;
    private const double LearningRate = 1e-3;
    private const int Warmup = 5;

    public async Task RunAsync()
    {
        output.WriteLine("## PyTorch DDP against the embedded mode (MLP, batch 64 per worker, Adam 1e-3)");
        output.WriteLine();
        // Without PyTorch the embedded column is still measured (tools/bench-dapr-vs-ddp.sh reads it), and DDP's says why not.
        string? missing = Missing();
        if (missing is not null)
        {
            output.WriteLine($"PyTorch DDP skipped: {missing}.");
            output.WriteLine();
        }
        string? fashion = Directory.Exists("/usr/share/datasets/fashion-mnist") ? "/usr/share/datasets/fashion-mnist" : null;
        using var loaded = fashion is not null
            ? TrainingData.FromMnistFolder(fashion, 1, 2000, trainLimit: 16_384, dataset: IdxDataset.FashionMnist)
            : TrainingData.Synthetic(16_384, 1, 2000);
        // 2,000 held-out images: the final evaluation stays a small part of what the warm-up subtraction removes.
        var data = new TrainingData(loaded.Train, loaded.TrainIndices, loaded.Holdout, loaded.HoldoutIndices[..Math.Min(2000, loaded.HoldoutIndices.Length)],
            loaded.Description + ", 2,000 of its held-out images");
        int rounds = quick ? 30 : 200;
        string folder = Directory.CreateTempSubdirectory("daprtrain-ddp-bench-").FullName;
        try
        {
            Export(data, folder);
            output.WriteLine($"Data: {data.Description}. {rounds} rounds. Embedded: this process, every worker's step on the torch threads the bench runs with ({TrainerDefaults()}), wall time per round after 5 warm-up rounds (a 5-round job's wall time, evaluation included, taken off the whole job's). DDP: {Path.GetFileName(Python)} processes, one torch thread each, wall time per round after 5 warm-up rounds; both on this machine's {Environment.ProcessorCount} cores.");
            output.WriteLine();
            output.WriteLine("| N | embedded p2p ms a round | PyTorch DDP ms a round | embedded / DDP | embedded held-out | DDP held-out |");
            output.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: |");
            await EmbeddedAsync(data, 4, Warmup); // unrecorded: the JIT optimises the engine's hot paths first
            foreach (int workers in workerCounts)
            {
                // The same warm-up as DDP's: a 5-round job's wall time (start-up, first rounds, final evaluation) is taken
                // off the whole job's, so what is left is rounds 6 to the last.
                var warmUp = await EmbeddedAsync(data, workers, Warmup);
                var embedded = await EmbeddedAsync(data, workers, rounds);
                double embeddedMs = (embedded.WallMs - warmUp.WallMs) / (rounds - Warmup);
                if (missing is null)
                {
                    var (ddpMs, ddpAccuracy) = Ddp(folder, workers, rounds);
                    output.WriteLine($"| {workers} | {embeddedMs:F2} | {ddpMs:F2} | {embeddedMs / ddpMs:F2} | {embedded.FinalAccuracy:P2} | {ddpAccuracy:P2} |");
                }
                else
                {
                    output.WriteLine($"| {workers} | {embeddedMs:F2} | skipped | - | {embedded.FinalAccuracy:P2} | - |");
                }
            }
            output.WriteLine();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static string TrainerDefaults() => $"{TorchSharp.torch.get_num_threads()} threads";

    private static Task<RunResult> EmbeddedAsync(TrainingData data, int workers, int rounds) =>
        EngineBenchmarks.RunAsync(data, Topology.PeerToPeer, workers, rounds, batch: Batch);

    private static void Export(TrainingData data, string folder)
    {
        void Write(string name, DaprTrain.Training.Data.LabeledDataset set, long[] indices)
        {
            int pixels = 28 * 28;
            var features = new float[indices.Length * pixels];
            var labels = new long[indices.Length];
            for (int i = 0; i < indices.Length; i++)
            {
                set.Features.AsSpan((int)indices[i] * pixels, pixels).CopyTo(features.AsSpan(i * pixels));
                labels[i] = set.Labels[indices[i]];
            }
            File.WriteAllBytes(Path.Combine(folder, name + ".f32"), MemoryMarshal.AsBytes(features.AsSpan()).ToArray());
            File.WriteAllBytes(Path.Combine(folder, name + ".i64"), MemoryMarshal.AsBytes(labels.AsSpan()).ToArray());
        }
        Write("train", data.Train, data.TrainIndices);
        Write("holdout", data.Holdout, data.HoldoutIndices);
    }

    private static (double MsPerRound, double Accuracy) Ddp(string folder, int workers, int rounds)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "pytorch", "ddp_bench.py");
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in new[] { script, folder, workers.ToString(System.Globalization.CultureInfo.InvariantCulture), rounds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     Batch.ToString(System.Globalization.CultureInfo.InvariantCulture), LearningRate.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"ddp_bench.py with {workers} workers did not finish within 10 minutes");
        }
        string line = output.Result.Trim().Split('\n')[^1];
        if (process.ExitCode != 0) throw new InvalidOperationException($"ddp_bench.py failed ({process.ExitCode}): {error.Result}");
        using var json = JsonDocument.Parse(line);
        return (json.RootElement.GetProperty("msPerRound").GetDouble(), json.RootElement.GetProperty("accuracy").GetDouble());
    }

    private static string? Missing()
    {
        try
        {
            using var probe = Process.Start(new ProcessStartInfo(Python, ["-c", "import torch, numpy"]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            if (!probe.WaitForExit(60_000))
            {
                probe.Kill(entireProcessTree: true);
                return $"{Python} did not import torch within a minute";
            }
            return probe.ExitCode == 0 ? null : $"PyTorch is not installed for {Python} (sudo apt-get install python3-torch)";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return $"{Python} is not there";
        }
    }
}
