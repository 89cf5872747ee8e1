using System.Diagnostics;
using System.Globalization;
using System.Text;
using DaprTrain.Coordination;
using DaprTrain.Engine.Compression;
using DaprTrain.Engine.Storage;
using DaprTrain.Simulation;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Faults;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

/// <summary>
/// compare --scenario compression: every codec on every chosen topology, without faults, on the same data and seed; the
/// bytes each worker sends and receives per round (as counted on the wire, compressed) and the held-out accuracy, each
/// against the uncompressed run of its topology in the same invocation.
/// </summary>
internal static class CompressionComparison
{
    public static IReadOnlyList<string> DefaultCodecs { get; } = ["none", "fp16", "int8", "topk:0.01", "qsgd:7"];

    public static async Task<int> RunAsync(JobOptions template, IReadOnlyList<Topology> topologies, IReadOnlyList<string> codecs, TrainingData data,
        PriceTable prices, string folder, string commandLine, TextWriter output, CancellationToken cancellationToken)
    {
        var specs = codecs.Select(CompressionSpec.Parse).Prepend(CompressionSpec.None).Distinct().ToList();
        output.WriteLine($"data: {data.Description}");
        output.WriteLine($"compression: {string.Join(", ", topologies.Select(t => t.Name()))} x {string.Join(", ", specs)}; {template.Workers} workers, " +
                         $"{template.Trainer.Model}, {template.Rounds} rounds each, seed {template.Trainer.Seed}");
        var rows = new List<(Topology Topology, CompressionSpec Codec, RunResult Run)>();
        var total = Stopwatch.StartNew();
        foreach (var topology in topologies)
        {
            foreach (var spec in specs)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var options = template with { JobId = $"compression-{topology.Name()}", Topology = topology, Faults = FaultPlan.None, Compression = spec };
                options.Validate();
                var run = await DistributedRun.RunAsync(options, data, new InMemoryCheckpointStore(), prices, output, quiet: true, cancellationToken);
                Divergence.Check(run);
                rows.Add((topology, spec, run));
                output.WriteLine($"  {topology.Name(),-12} {spec,-10} accuracy {run.FinalAccuracy * 100,6:F2}%  sent {run.BytesPerWorkerPerRound(true) / 1e6,8:F4} MB  " +
                                 $"received {run.BytesPerWorkerPerRound(false) / 1e6,8:F4} MB per worker per round  ({run.WallMs / 1000:F1} s wall)");
            }
        }
        string table = Markdown(rows);
        output.WriteLine();
        output.Write(table);
        Directory.CreateDirectory(folder);
        var md = new StringBuilder();
        md.AppendLine("# Gradient compression");
        md.AppendLine();
        md.AppendLine($"Command: `{commandLine}`");
        md.AppendLine();
        md.AppendLine($"Data: {data.Description}. {template.Workers} workers, {template.Trainer.Model}, {template.Rounds} rounds, seed {template.Trainer.Seed}, no faults. " +
                      "Bytes are what the embedded bus carried (whole messages: header, compressed payload, checksum), per worker per round; " +
                      "ratios and accuracy differences are against the uncompressed run of the same topology in this invocation.");
        md.AppendLine();
        md.Append(table);
        string path = Path.Combine(folder, "compression.md");
        await File.WriteAllTextAsync(path, md.ToString(), cancellationToken);
        output.WriteLine($"report: {Path.GetFullPath(path)} in {total.Elapsed.TotalSeconds:F0} s");
        return ExitCodes.Success;
    }

    private static string Markdown(IReadOnlyList<(Topology Topology, CompressionSpec Codec, RunResult Run)> rows)
    {
        var md = new StringBuilder();
        md.AppendLine("| topology | codec | held-out accuracy | vs none | MB sent / worker / round | MB received / worker / round | fewer bytes than none (sent + received) |");
        md.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var row in rows)
        {
            var baseline = rows.First(r => r.Topology == row.Topology && r.Codec.IsNone).Run;
            double bytes = row.Run.BytesPerWorkerPerRound(true) + row.Run.BytesPerWorkerPerRound(false);
            double plain = baseline.BytesPerWorkerPerRound(true) + baseline.BytesPerWorkerPerRound(false);
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {row.Topology.Name()} | {row.Codec} | {row.Run.FinalAccuracy * 100:F2}% | {(row.Run.FinalAccuracy - baseline.FinalAccuracy) * 100:+0.00;-0.00;0.00} pt | " +
                $"{row.Run.BytesPerWorkerPerRound(true) / 1e6:F4} | {row.Run.BytesPerWorkerPerRound(false) / 1e6:F4} | {plain / bytes:F2}x |"));
        }
        return md.ToString();
    }
}
