using System.Diagnostics;
using System.Runtime.InteropServices;
using DaprTrain.Coordination;
using DaprTrain.Engine.Nodes;
using DaprTrain.Training;
using DaprTrain.Training.Parameters;
using DaprTrain.Training.Tests;
using Microsoft.Extensions.Logging.Abstractions;

namespace DaprTrain.Engine.Tests;

/// <summary>A fact that needs PyTorch (Debian's python3-torch for /usr/bin/python3): skipped with the reason where it is missing.</summary>
public sealed class PyTorchTheoryAttribute : TheoryAttribute
{
    private static readonly Lazy<string?> Missing = new(() =>
    {
        try
        {
            using var probe = Process.Start(new ProcessStartInfo(PyTorchEquivalenceTests.Python, ["-c", "import torch, numpy"]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            if (!probe.WaitForExit(60_000))
            {
                probe.Kill(entireProcessTree: true);
                return $"{PyTorchEquivalenceTests.Python} did not import torch within a minute";
            }
            return probe.ExitCode == 0 ? null : $"PyTorch is not installed for {PyTorchEquivalenceTests.Python} (apt-get install python3-torch; .ci/run does it as root)";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return $"{PyTorchEquivalenceTests.Python} is not there";
        }
    });

    public PyTorchTheoryAttribute()
    {
        if (Missing.Value is { } reason) Skip = reason;
    }
}

/// <summary>
/// Issue 16 part 4: DaprTrain's training step against an independent implementation. Two workers train the MLP for
/// 20 rounds through the engine (gradients computed and exchanged as wire messages; in p2p averaged and applied by each
/// replica, under a parameter server averaged and applied by the server, whose weights the workers take);
/// tools/pytorch/ddp_equivalence.py then runs PyTorch 1.13's DistributedDataParallel (gloo, two processes)
/// from the same initial weights on the same samples per worker and round, with torch.optim's SGD or Adam. The final
/// weights must agree within a tolerance that float32 arithmetic in two libtorch versions explains (see
/// <see cref="Tolerance"/>); a wrong mean, a wrong optimizer formula or a sample out of place is far outside it.
/// </summary>
public sealed class PyTorchEquivalenceTests
{
    public const string Python = "/usr/bin/python3";
    private const int Workers = 2;
    private const int Rounds = 20;
    private const int Batch = 32;

    /// <summary>
    /// Largest difference allowed in any weight, as a multiple of the learning rate. The two sides sum the same float32
    /// products in different orders (libtorch 2.10's matmul kernels against 1.13's; DDP's all-reduce against the
    /// engine's fixed-order mean): each gradient differs in its last bits, about 1e-7 relative. SGD adds lr x that per
    /// round; Adam divides by sqrt(v), so where a gradient is near zero its step (up to lr) can move more than that.
    /// 20 rounds stay under 1% of one step, 0.01 lr, for every weight; a wrong step is a whole lr or more.
    /// </summary>
    private const double Tolerance = 0.01;

    [PyTorchTheory]
    [InlineData("p2p", "sgd", 0.05, 0.9)]
    [InlineData("p2p", "adam", 2e-3, 0.0)]
    [InlineData("ps", "sgd", 0.05, 0.9)]
    [InlineData("ps", "adam", 2e-3, 0.0)]
    public void Twenty_rounds_end_with_the_weights_pytorch_ddp_reaches_from_the_same_start_and_samples(string topology, string optimizer, double learningRate, double momentum)
    {
        var data = TestData.Mnist8k2k;
        var options = new TrainerOptions("mlp", new OptimizerSettings(optimizer == "sgd" ? OptimizerKind.Sgd : OptimizerKind.Adam, learningRate, momentum), Batch, 7);
        string[] members = ["worker-1", "worker-2"];
        var view = new MembershipView(1, members, new Dictionary<int, string> { [0] = "worker-1", [1] = "worker-2" }, "worker-1", []);
        int half = data.TrainIndices.Length / 2;
        long[][] shards = [data.TrainIndices[..half], data.TrainIndices[half..]];
        var nodes = members.Select(id => new WorkerNode(id, "equivalence", options, data, NullLogger.Instance)).ToArray();
        using var function = new GradientFunction(options);
        using var server = new ParameterServerNode("equivalence", options, NullLogger.Instance);
        server.SetMembers(members);
        try
        {
            foreach (var node in nodes) node.ApplyView(view, shards);
            float[] initial = nodes[0].Trainer.Parameters.WeightSpan.ToArray();
            var used = new long[Rounds, Workers, Batch];
            for (int round = 1; round <= Rounds; round++)
            {
                for (int w = 0; w < Workers; w++)
                {
                    var batch = nodes[w].DrawBatchShares(1)[0];
                    batch.Length.Should().Be(Batch);
                    for (int i = 0; i < Batch; i++) used[round - 1, w, i] = batch[i];
                    nodes[w].CombineShareGradients([(batch.Length, function.Invoke(nodes[w].Trainer.Parameters.WeightSpan, nodes[w].TrainData, batch))]);
                }
                var messages = nodes.Select(n => n.GradientMessage()).ToArray();
                if (topology == "ps")
                {
                    // The server averages what the workers sent, steps its optimizer and sends its weights back.
                    foreach (var message in messages) server.HandleGradient(message).Status.Should().Be(DaprTrain.Engine.Messaging.DeliveryStatus.Success);
                    byte[] weights = server.CloseRound();
                    foreach (var node in nodes) node.HandleWeights(weights).Status.Should().Be(DaprTrain.Engine.Messaging.DeliveryStatus.Success);
                    continue;
                }
                for (int w = 0; w < Workers; w++)
                {
                    for (int other = 0; other < Workers; other++)
                    {
                        if (other != w) nodes[w].HandleGradient(messages[other]).Status.Should().Be(DaprTrain.Engine.Messaging.DeliveryStatus.Success);
                    }
                    nodes[w].ApplyDecision(new RoundDecision(0, round, members, members));
                }
            }
            nodes[0].WeightHash.Should().Be(nodes[1].WeightHash, "the replicas apply the same decision, or take the same server weights");
            if (topology == "ps") nodes[0].WeightHash.Should().Be(server.WeightHash);
            float[] ours = nodes[0].Trainer.Parameters.WeightSpan.ToArray();

            float[] theirs = RunDdp(optimizer, learningRate, momentum, initial, used, data.Train);
            theirs.Length.Should().Be(ours.Length);
            double largest = 0, moved = 0;
            int at = 0;
            for (int i = 0; i < ours.Length; i++)
            {
                double difference = Math.Abs(ours[i] - theirs[i]);
                if (difference > largest) (largest, at) = (difference, i);
                moved = Math.Max(moved, Math.Abs(ours[i] - initial[i]));
            }
            Console.WriteLine($"{topology} {optimizer}: after {Rounds} rounds of {Workers} workers the largest difference from PyTorch DDP is {largest:E2} (weight {at}; {largest / learningRate:E2} lr); "
                + $"the largest change from the start is {moved:E2}");
            moved.Should().BeGreaterThan(learningRate, "the weights moved, so agreeing is not trivial");
            largest.Should().BeLessThan(Tolerance * learningRate, $"weight {at}: {ours[at]} here, {theirs[at]} in PyTorch");
        }
        finally
        {
            foreach (var node in nodes) node.Dispose();
        }
    }

    /// <summary>Writes what the run used, runs the PyTorch side and reads its final weights.</summary>
    private static float[] RunDdp(string optimizer, double learningRate, double momentum, float[] initial, long[,,] used, DaprTrain.Training.Data.LabeledDataset train)
    {
        string folder = Directory.CreateTempSubdirectory("daprtrain-ddp-").FullName;
        try
        {
            // The samples used, each once, and the indices rewritten to their rows.
            var rows = new Dictionary<long, long>();
            foreach (long index in used) rows.TryAdd(index, rows.Count);
            int pixels = 28 * 28;
            var features = new float[rows.Count * pixels];
            var labels = new long[rows.Count];
            foreach (var (index, row) in rows)
            {
                train.Features.AsSpan((int)index * pixels, pixels).CopyTo(features.AsSpan((int)row * pixels));
                labels[row] = train.Labels[index];
            }
            var local = new long[used.Length];
            int k = 0;
            foreach (long index in used) local[k++] = rows[index];
            File.WriteAllBytes(Path.Combine(folder, "weights.f32"), MemoryMarshal.AsBytes(initial.AsSpan()).ToArray());
            File.WriteAllBytes(Path.Combine(folder, "features.f32"), MemoryMarshal.AsBytes(features.AsSpan()).ToArray());
            File.WriteAllBytes(Path.Combine(folder, "labels.i64"), MemoryMarshal.AsBytes(labels.AsSpan()).ToArray());
            File.WriteAllBytes(Path.Combine(folder, "indices.i64"), MemoryMarshal.AsBytes(local.AsSpan()).ToArray());
            File.WriteAllText(Path.Combine(folder, "spec.json"), System.Text.Json.JsonSerializer.Serialize(new
            {
                workers = Workers, rounds = Rounds, batch = Batch, hidden = 128, optimizer, lr = learningRate, momentum,
            }));

            string script = RepositoryFiles.PathOf("tools", "pytorch", "ddp_equivalence.py");
            using var process = Process.Start(new ProcessStartInfo(Python, [script, folder]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var error = process.StandardError.ReadToEndAsync();
            var output = process.StandardOutput.ReadToEndAsync();
            if (!process.WaitForExit(300_000))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException("ddp_equivalence.py did not finish within 5 minutes (a gloo rendezvous that never completed?)");
            }
            process.ExitCode.Should().Be(0, $"ddp_equivalence.py: {output.Result}{error.Result}");
            Console.WriteLine(output.Result.Trim());
            return MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(folder, "final.f32"))).ToArray();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
