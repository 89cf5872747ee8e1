using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using DaprTrain.Dapr;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Storage;
using DaprTrain.Training;
using DaprTrain.Training.Parameters;

namespace DaprTrain.Fuzz;

/// <summary>Small valid inputs of every target, made with the encoders themselves: the seed corpus and the property tests' starting points.</summary>
public static class Seeds
{
    private static float[] Values(int count, int salt) => Enumerable.Range(0, count).Select(i => MathF.Sin(i + salt) * 0.5f).ToArray();

    public static IReadOnlyList<WireMessage> WireMessages() =>
    [
        new(MessageKind.Gradient, "job-1", 0, 1, "worker-1", 64, 0, 0, Values(16, 1)),
        new(MessageKind.Weights, "mnist-mlp", 2, 30, "ps", 0, 0, 0, Values(96, 2)),
        new(MessageKind.GradientSlice, "job-é", 1, 7, "worker-3", 32, 2, 48, Values(24, 3)),
        new(MessageKind.ReducedSlice, "j", 0, 0, "worker-12", 0, 1, 24, Array.Empty<float>()),
    ];

    public static IReadOnlyList<(string, byte[])> Wire() =>
        [.. WireMessages().Select((m, i) => ($"wire-{i}", WireCodec.Encode(m))), .. CompressedWire()];

    /// <summary>A gradient and a slice in every compressed encoding (fp16, int8, top-k, qsgd in nibbles and in bytes), and a reduced slice in sparse-fp16.</summary>
    public static IReadOnlyList<(string, byte[])> CompressedWire()
    {
        var gradient = WireMessages()[0] with { Values = ReadOnlyMemory<float>.Empty };
        var slice = WireMessages()[2] with { Values = ReadOnlyMemory<float>.Empty };
        var seeds = new List<(string, byte[])>();
        foreach (string codec in new[] { "fp16", "int8", "topk:0.25", "qsgd:3", "qsgd:100" })
        {
            var spec = DaprTrain.Engine.Compression.CompressionSpec.Parse(codec);
            seeds.Add(($"wire-{codec.Replace(':', '-')}", new DaprTrain.Engine.Compression.GradientCompressor(spec, 1, 40).Encode(gradient, Values(40, 5), 0)));
            seeds.Add(($"wire-{codec.Replace(':', '-')}-slice", new DaprTrain.Engine.Compression.GradientCompressor(spec, 1, 72).Encode(slice, Values(24, 6), 48)));
        }
        // A reduced slice under top-k: sent on its support as halves with delta-coded indices (sparse-fp16).
        var reduced = Values(24, 7);
        for (int i = 0; i < reduced.Length; i += 3) reduced[i] = 0;
        var owner = DaprTrain.Engine.Compression.GradientCompressor.ForReducedSlices(DaprTrain.Engine.Compression.CompressionSpec.Parse("topk:0.25"), 1, 72);
        seeds.Add(("wire-sparse-fp16-slice", owner.Encode(slice, reduced, 48)));
        return seeds;
    }

    /// <summary>The key the signed seeds are signed with; <see cref="SignedKeys"/> registers it for each seed's sender.</summary>
    public static DaprTrain.Coordination.Security.NodeKey SigningKey { get; } = DaprTrain.Coordination.Security.NodeKey.Create();

    public static MessageKeys SignedKeys { get; } = MessageKeys.From(
        WireMessages().Select(m => m.Sender).Distinct().ToDictionary(s => s, _ => SigningKey.PublicKey));

    /// <summary>The wire seeds with their signature block (services/DaprTrain.Engine/Messaging/MessageSignature.cs).</summary>
    public static IReadOnlyList<(string, byte[])> SignedWire() => WireMessages().Select((m, i) =>
    {
        var bytes = WireCodec.Encode(m, m.Values.Span, trailerBytes: MessageSignature.TrailerBytes);
        MessageSignature.Sign(bytes, SigningKey);
        return ($"signed-wire-{i}", bytes);
    }).ToList();

    /// <summary>Chunk sequences: messages split at a small chunk size, in order, reordered, and with a duplicate.</summary>
    public static IReadOnlyList<(string, byte[])> Chunks()
    {
        var message = WireCodec.Encode(WireMessages()[1]);
        var chunks = ChunkCodec.Split(message, 160);
        var small = ChunkCodec.Split(Encoding.UTF8.GetBytes("a short message"), 128);
        return
        [
            ("chunks-in-order", FuzzTargets.Frame(chunks)),
            ("chunks-reversed", FuzzTargets.Frame(chunks.Reverse())),
            ("chunks-duplicate", FuzzTargets.Frame([chunks[0], chunks[1], chunks[0], .. chunks.Skip(1)])),
            ("chunk-single", FuzzTargets.Frame(small)),
            ("chunks-two-messages", FuzzTargets.Frame([.. small, .. ChunkCodec.Split(WireCodec.Encode(WireMessages()[0]), 96)])),
        ];
    }

    public static IReadOnlyList<TrainingCheckpoint> TrainingCheckpoints() =>
    [
        new("mlp", new OptimizerSettings(OptimizerKind.Sgd, 0.05, 0.9), 12, 12, 42, 0, 384, Values(32, 4), [Values(32, 5)]),
        new("mlp-512", new OptimizerSettings(OptimizerKind.Adam, 1e-3), 100, 99, ulong.MaxValue, 3, 0, Values(24, 6), [Values(24, 7), Values(24, 8)]),
        new("cnn", new OptimizerSettings(OptimizerKind.Sgd, 0.1), 0, 0, 0, 0, 0, [], []),
    ];

    public static IReadOnlyList<(string, byte[])> Checkpoints() =>
        TrainingCheckpoints().Select((c, i) => ($"checkpoint-{i}", CheckpointCodec.Encode(c))).ToList();

    public static IReadOnlyList<(string, byte[])> JobCheckpoints() =>
        TrainingCheckpoints().Select((c, i) => ($"job-checkpoint-{i}", Engine.Storage.JobCheckpoints.Encode(new JobCheckpoint(10 + i, i, $"worker-{i + 1}", c)))).ToList();

    public static byte[] IdxBytes(params int[] dimensions)
    {
        int data = dimensions.Aggregate(1, (a, d) => a * d);
        var bytes = new byte[4 + 4 * dimensions.Length + data];
        bytes[2] = 0x08;
        bytes[3] = (byte)dimensions.Length;
        for (int d = 0; d < dimensions.Length; d++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dimensions[d]);
        for (int i = 0; i < data; i++) bytes[4 + 4 * dimensions.Length + i] = (byte)(i * 37);
        return bytes;
    }

    public static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true)) gzip.Write(bytes);
        return output.ToArray();
    }

    public static IReadOnlyList<(string, byte[])> IdxPlain() =>
    [
        ("idx-images-2x5x5", IdxBytes(2, 5, 5)),
        ("idx-images-1x28x28", IdxBytes(1, 28, 28)),
        ("idx-labels-10", IdxBytes(10)),
    ];

    public static IReadOnlyList<(string, byte[])> Idx() =>
    [
        .. IdxPlain(),
        ("idx-images-3x4x4-gzip", Gzip(IdxBytes(3, 4, 4))),
        ("idx-images-1x28x28-gzip", Gzip(IdxBytes(1, 28, 28))),
    ];

    public static IReadOnlyList<(string, byte[])> Faults() =>
    [
        ("scenario-kill-restart", Utf8("name: kill and restart\n# a worker dies and comes back\nkill:worker-2@round=30\nrestart:worker-2@round=40\n")),
        ("scenario-bus", Utf8("name: lossy bus\ndrop=0.05\nduplicate=0.1\ndelay=0.2:50ms\nreorder\n")),
        ("scenario-slow-ps", Utf8("slow:worker-1=200ms@round=5\nslow:worker-3=1.5s\nkill:ps@round=20   # the parameter server\n")),
        ("scenario-functions", Utf8("fail:function@p=0.1\ntimeout:function@p=0.05\ncoldstart=800ms\n")),
    ];

    private static byte[] ConfigFile(string name)
    {
        // The files shipped with the simulation (config/*.json), copied beside this program by the build.
        string path = Path.Combine(AppContext.BaseDirectory, "config", name);
        return File.ReadAllBytes(path);
    }

    public static IReadOnlyList<(string, byte[])> Prices() =>
    [
        ("prices-shipped", ConfigFile("prices.json")),
        ("prices-minimal", Utf8("""{"source":"s","date":"2025-01-01","region":"r","serverlessPerGbSecond":0.0000166667,"serverlessPerMillionRequests":0.2,"vmInstanceType":"m5.large","vmPerHour":0.096,"workerMemoryGb":2,"serverMemoryGb":4}""")),
    ];

    public static IReadOnlyList<(string, byte[])> Platforms() =>
    [
        ("platforms-shipped", ConfigFile("platforms.json")),
        ("platforms-one", Utf8("""
            {"platforms": [{"name": "p", "source": "s", "date": "2025-01-01", "memoryMb": 1024, "mbPerVcpu": 1769, "maxVcpus": 6, "coldStartMs": 300,
              "invokeOverheadMs": 20, "bandwidthMbps": 600, "idleTimeoutMs": 600000, "concurrencyLimit": 1000, "timeoutMs": 60000, "maxTimeoutMs": 900000,
              "billingGranularityMs": 1, "minimumBilledMs": 1, "billsColdStart": true, "pricePerGbSecond": 0.0000166667, "pricePerVcpuSecond": 0,
              "pricePerMillionRequests": 0.2, "pricePerThousandTransitions": 0, "transitionsPerInvocation": 0, "transitionsPerFanOut": 0},]}
            """)),
    ];

    public static IReadOnlyList<(string, byte[])> Predictions()
    {
        string image = "[" + string.Join(",", Enumerable.Range(0, 784).Select(i => (i * 7 % 256).ToString(System.Globalization.CultureInfo.InvariantCulture))) + "]";
        string zeros = "[" + string.Join(",", Enumerable.Repeat("0", 784)) + "]";
        return
        [
            ("prediction-json-one", [0, .. Utf8($$"""{"images": [{{image}}]}""")]),
            ("prediction-json-two", [0, .. Utf8($$"""{"images":[{{zeros}},{{zeros}}]}""")]),
            ("prediction-bytes-one", [1, .. Enumerable.Range(0, 784).Select(i => (byte)(i * 13))]),
        ];
    }

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
