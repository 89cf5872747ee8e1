using System.Text;
using DaprTrain.Coordination;
using DaprTrain.Coordination.Security;
using DaprTrain.Dapr;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Storage;
using DaprTrain.Simulation;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Faults;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using DaprTrain.Training.Parameters;
using Microsoft.Extensions.Logging.Abstractions;

namespace DaprTrain.Cli.Benchmarks;

/// <summary>
/// What signing every message costs (issue 11's goal: signing plus verifying adds at most half of a round's exchange time
/// for the MLP), measured in one run: the per-message sign and verify; the embedded exchange per round with signing on
/// and off, jobs interleaved; and one worker's round in the Dapr services (its publish and its peers' deliveries as the
/// services handle them: chunking, the CloudEvent's base64, reassembly, decoding), against that worker's signing.
/// </summary>
internal static class SigningBenchmarks
{
    public static async Task RunAsync(TextWriter output, bool quick)
    {
        using var data = TrainingData.Synthetic(8192, seed: 1, holdoutCount: 256);
        using var key = NodeKey.Create();
        int parameters;
        using (var trainer = new Trainer(new TrainerOptions("mlp", new OptimizerSettings(OptimizerKind.Sgd, 0.1), 8, 1))) parameters = trainer.Parameters.Count;
        var values = Enumerable.Range(0, parameters).Select(i => MathF.Sin(i) * 0.01f).ToArray();
        var header = new WireMessage(MessageKind.Gradient, "bench", 0, 7, "worker-2", 64, 0, 0, ReadOnlyMemory<float>.Empty);
        var signed = WireCodec.Encode(header, values, trailerBytes: MessageSignature.TrailerBytes);
        MessageSignature.Sign(signed, key);
        int length = MessageSignature.MessageLength(signed);
        var decoded = WireCodec.Decode(signed, length);
        var keys = MessageKeys.From(new Dictionary<string, string> { ["worker-2"] = key.PublicKey });
        int calls = quick ? 50 : 2000;
        double sign = Measure.SecondsPerCall(() => MessageSignature.Sign(signed, key), calls) * 1e3;
        double verify = Measure.SecondsPerCall(() =>
        {
            if (MessageSignature.Check(signed, length, decoded, keys) is { } bad) throw new InvalidOperationException(bad.Reason);
        }, calls) * 1e3;

        output.WriteLine("## Signing every message (ECDSA P-256) against the exchange (MLP, 101,770 parameters)");
        output.WriteLine();
        output.WriteLine($"Per message, median: sign {sign * 1e3:F1} us, verify {verify * 1e3:F1} us (header and checksum are signed, so both are the same for every model size).");
        output.WriteLine();

        // The embedded exchange, signed and unsigned jobs interleaved so that both see the same machine.
        int rounds = quick ? 6 : 60, repeats = quick ? 1 : 3;
        output.WriteLine($"Embedded exchange per round (encode, sign, the in-process broker's delivery with decode, verify and checks, aggregation; no compute, no optimizer step): median over {repeats} x {rounds - 1} rounds of each, signed and unsigned jobs interleaved.");
        output.WriteLine();
        output.WriteLine("| topology | N | unsigned | signed | added by signing | added / unsigned exchange | signatures + verifications per round |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        await RunJobAsync(data, Topology.PeerToPeer, 4, quick ? 3 : 30, true);
        (Topology, int)[] configurations = quick
            ? [(Topology.ParameterServer, 4), (Topology.PeerToPeer, 4), (Topology.PeerToPeerScatter, 4)]
            : [(Topology.ParameterServer, 4), (Topology.PeerToPeer, 4), (Topology.PeerToPeerScatter, 4), (Topology.PeerToPeer, 8)];
        foreach (var (topology, workers) in configurations)
        {
            var on = new List<double>();
            var off = new List<double>();
            for (int r = 0; r < repeats; r++)
            {
                off.AddRange((await RunJobAsync(data, topology, workers, rounds, false)).Rounds.Skip(1).Select(x => x.ExchangeWallMs));
                on.AddRange((await RunJobAsync(data, topology, workers, rounds, true)).Rounds.Skip(1).Select(x => x.ExchangeWallMs));
            }
            double unsigned = Median(off), withSignatures = Median(on);
            var (signs, verifies) = Operations(topology, workers);
            output.WriteLine($"| {topology.Name()} | {workers} | {unsigned:F3} ms | {withSignatures:F3} ms | {withSignatures - unsigned:F3} ms | {(withSignatures - unsigned) / unsigned:F2} | {signs} + {verifies} |");
        }
        output.WriteLine();

        // One p2p worker's round in the services (N = 4): it publishes its gradient once and takes its 3 peers' deliveries.
        // The CPU work of the services' message path, without daprd's and the broker's own time (so a lower bound of the
        // Dapr-mode exchange), against that worker's signing: 1 signature and 3 verifications.
        var message = WireCodec.Encode(header, values);
        double publish = Measure.SecondsPerCall(() => Envelopes(ChunkCodec.Split(message)), quick ? 5 : 200) * 1e3;
        var bodies = Envelopes(ChunkCodec.Split(message));
        double deliver = Measure.SecondsPerCall(() =>
        {
            var assembler = new ChunkAssembler();
            ChunkResult last = default;
            foreach (var body in bodies)
            {
                var chunk = CloudEventData.Read(body, "application/cloudevents+json", ChunkCodec.DefaultMaxChunkBytes, out string? problem) ?? throw new InvalidOperationException(problem);
                last = assembler.Add(chunk);
            }
            WireCodec.Decode(last.Message!);
        }, quick ? 5 : 200) * 1e3;
        double services = publish + 3 * deliver;
        double signing = sign + 3 * verify;
        output.WriteLine("One p2p worker's round in the Dapr services, N = 4 (CPU work of the services' message path; daprd's and the broker's time not included, so the exchange is longer than this):");
        output.WriteLine();
        output.WriteLine("| publish (encode done; chunk, CloudEvent with data_base64) | 3 deliveries (CloudEvent read, base64, reassembly, decode) | services' exchange, at least | signing (1 sign + 3 verify) | signing / exchange |");
        output.WriteLine("| ---: | ---: | ---: | ---: | ---: |");
        output.WriteLine($"| {publish:F3} ms | {3 * deliver:F3} ms | {services:F3} ms | {signing:F3} ms | {signing / services:F2} |");
        output.WriteLine();
    }

    /// <summary>Signatures and verifications per round across all nodes (own messages are not verified by their sender).</summary>
    private static (int Signs, int Verifies) Operations(Topology topology, int n) => topology switch
    {
        Topology.ParameterServer => (n + 1, n + n),
        Topology.PeerToPeer => (n, n * (n - 1)),
        _ => (n * (n - 1) + n, 2 * n * (n - 1)),
    };

    /// <summary>The CloudEvents daprd would POST for these chunks (binary data travels base64-encoded in data_base64).</summary>
    private static List<byte[]> Envelopes(IReadOnlyList<byte[]> chunks) => chunks.Select(chunk => Encoding.UTF8.GetBytes(
        "{\"id\":\"bench\",\"specversion\":\"1.0\",\"source\":\"worker-2\",\"type\":\"com.dapr.event.sent\",\"datacontenttype\":\"application/octet-stream\"," +
        "\"topic\":\"gradients\",\"pubsubname\":\"gradients\",\"data_base64\":\"" + Convert.ToBase64String(chunk) + "\"}")).ToList();

    private static async Task<RunResult> RunJobAsync(TrainingData data, Topology topology, int workers, int rounds, bool sign)
    {
        var options = new JobOptions($"sign-{topology.Name()}-{workers}", topology, workers,
            new TrainerOptions("mlp", new OptimizerSettings(OptimizerKind.Adam, 1e-3), 64, 1),
            rounds, FaultPlan.None, new NetworkModel(), EvaluateEvery: rounds, SignMessages: sign);
        using var job = new EmbeddedJob(options, data, new InMemoryCheckpointStore(), PriceTable.Default(), NullLoggerFactory.Instance);
        return await job.RunAsync();
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        return sorted.Length == 0 ? 0 : sorted[sorted.Length / 2];
    }
}
