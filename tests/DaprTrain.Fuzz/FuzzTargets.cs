using System.Buffers.Binary;
using System.IO.Hashing;
using DaprTrain.Dapr;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Storage;
using DaprTrain.Serving;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Compute;
using DaprTrain.Simulation.Faults;
using DaprTrain.Training;
using DaprTrain.Training.Data;

namespace DaprTrain.Fuzz;

/// <summary>What a parser did with an input: accepted it, or refused it with its documented exception (or result).</summary>
public enum FuzzOutcome
{
    Accepted,
    Rejected,
}

/// <summary>A property of a parser that an input broke: an undocumented exception, a wrong result, or allocation out of proportion to the input.</summary>
public sealed class FuzzFindingException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// One parser of outside input, as AFL++ and the property tests drive it. <see cref="Run"/> parses and returns whether
/// the input was accepted; the parser's documented exception (<see cref="Documented"/>) means rejected; anything else
/// escapes and is a finding. <see cref="AllocationFactor"/> bounds the bytes a parse may allocate:
/// <see cref="AllocationSlack"/> plus the factor times the input length.
/// </summary>
public sealed record FuzzTarget(string Name, string Description, Type? Documented, Func<byte[], bool> Run, Func<IReadOnlyList<(string Name, byte[] Bytes)>> Seeds, long AllocationFactor = 16)
{
    public const long AllocationSlack = 256 * 1024;

    public override string ToString() => Name;
}

public static class FuzzTargets
{
    /// <summary>Requests of at most this many images, the model server's default (Serving:MaxImagesPerRequest).</summary>
    public const int MaxImages = 256;

    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new("wire", "WireCodec.Decode of a gradient/weights/slice message; the harness re-seals the XxHash3 trailer so mutations reach the fields",
            typeof(MessageRejectedException), Wire, Seeds.Wire),
        new("signed-wire", "a signed message as a node opens it: the signature block found, WireCodec.Decode of what it follows, MessageSignature.Check "
            + "against the seeds' key; the harness re-seals the XxHash3 checksum before the block, so mutations reach the fields and the signature check",
            typeof(MessageRejectedException), SignedWire, Seeds.SignedWire),
        new("chunk", "ChunkAssembler.Add of a sequence of chunks (u16 little-endian length, then the chunk), each chunk's trailer re-sealed; a production-sized assembler",
            null, Chunk, Seeds.Chunks, AllocationFactor: 64),
        new("checkpoint", "CheckpointCodec.Decode of a training checkpoint, trailer re-sealed", typeof(CheckpointFormatException), Checkpoint, Seeds.Checkpoints),
        new("job-checkpoint", "JobCheckpoints.Decode of a job checkpoint blob, the inner checkpoint's trailer re-sealed", typeof(CheckpointFormatException), JobCheckpoint, Seeds.JobCheckpoints),
        new("idx", "IdxReader.Read of a file (raw or gzip); 1 dimension expected when the fourth byte is 1 (labels), else 3 (images)", typeof(IdxFormatException), Idx, Seeds.Idx, AllocationFactor: 64),
        new("faults", "FaultPlan.ParseFile of a scenario file, then Validate(4 workers, a parameter server, 100 rounds, serverless)", typeof(FaultSpecException), Faults, Seeds.Faults, AllocationFactor: 64),
        new("prices", "PriceTable.Load of a JSON price table", typeof(InvalidDataException), Prices, Seeds.Prices, AllocationFactor: 64),
        new("platforms", "PlatformProfile.LoadAll of a JSON platforms file", typeof(InvalidDataException), Platforms, Seeds.Platforms, AllocationFactor: 64),
        new("prediction", "PredictionRequest.ReadJsonAsync (first byte even) or ReadBytesAsync (odd) of the rest, at the default 256 images a request; never throws",
            null, Prediction, Seeds.Predictions, AllocationFactor: 64),
    ];

    public static FuzzTarget Get(string name) =>
        All.FirstOrDefault(t => t.Name == name) ?? throw new ArgumentException($"no fuzz target '{name}' (known: {string.Join(", ", All.Select(t => t.Name))})");

    /// <summary>
    /// Runs <paramref name="target"/> on <paramref name="input"/>: the documented exception is a rejection; any other
    /// exception escapes (wrapped in <see cref="FuzzFindingException"/> naming the target), and so does a parse that
    /// allocates more than the target's bound.
    /// </summary>
    public static FuzzOutcome Execute(FuzzTarget target, byte[] input)
    {
        WarmUp(target);
        long before = GC.GetAllocatedBytesForCurrentThread();
        FuzzOutcome outcome;
        try
        {
            outcome = target.Run(input) ? FuzzOutcome.Accepted : FuzzOutcome.Rejected;
        }
        catch (Exception ex) when (target.Documented is not null && ex.GetType() == target.Documented)
        {
            outcome = FuzzOutcome.Rejected;
        }
        catch (Exception ex) when (ex is not FuzzFindingException)
        {
            throw new FuzzFindingException($"{target.Name}: {ex.GetType().Name} on a {input.Length}-byte input: {ex.Message}", ex);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        long bound = FuzzTarget.AllocationSlack + target.AllocationFactor * input.Length;
        if (allocated > bound)
        {
            throw new FuzzFindingException($"{target.Name}: a {input.Length}-byte input made the parser allocate {allocated} bytes (bound {bound}); outcome {outcome}");
        }
        return outcome;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<bool>> Warmed = new();

    /// <summary>
    /// Runs the target's seeds once per process, unmeasured, before its first measured parse. A process's first JSON
    /// parse of a type builds System.Text.Json's metadata for it (about 280 KB for the platforms file, measured), so
    /// without this the allocation bound charged one-time initialisation to whichever input came first: the same
    /// 20-byte platforms input allocated 290 KB as a process's first parse and 6.6 KB after.
    /// </summary>
    private static void WarmUp(FuzzTarget target) => _ = Warmed.GetOrAdd(target.Name, _ => new Lazy<bool>(() =>
    {
        foreach (var (_, bytes) in target.Seeds())
        {
            try
            {
                target.Run(bytes);
            }
            catch (Exception)
            {
                // A seed that fails is reported by the tests that run the seeds; here it only warms the parser.
            }
        }
        return true;
    })).Value;

    /// <summary>Writes the XxHash3-64 of every byte before the last eight into the last eight (the trailer the binary formats end with).</summary>
    public static void Seal(Span<byte> bytes)
    {
        if (bytes.Length < 8) return;
        BinaryPrimitives.WriteUInt64LittleEndian(bytes[^8..], XxHash3.HashToUInt64(bytes[..^8]));
    }

    /// <summary>The wire target: seal, then decode.</summary>
    private static bool Wire(byte[] input)
    {
        var copy = (byte[])input.Clone();
        Seal(copy);
        return WireAsIs(copy);
    }

    /// <summary>The signed-wire target: re-seal the checksum before the signature block, then open as a node does.</summary>
    private static bool SignedWire(byte[] input)
    {
        var copy = (byte[])input.Clone();
        int length = MessageSignature.MessageLength(copy);
        if (length < 0) throw new MessageRejectedException("unsigned message (no signature block)");
        Seal(copy.AsSpan(0, length));
        var message = WireCodec.Decode(copy, length);
        // One key object for every test that runs the target: .NET's crypto objects are not thread-safe.
        (string Category, string Reason)? bad;
        lock (Seeds.SignedKeys) bad = MessageSignature.Check(copy, length, message, Seeds.SignedKeys);
        if (bad is { } refused) throw new MessageRejectedException(refused.Reason);
        return WireAsIs(copy[..length]);
    }

    /// <summary>Decodes the bytes as they are (the property tests use it for the checksum path too).</summary>
    public static bool WireAsIs(byte[] input)
    {
        // As a node decodes: compressed values into at most its model's size (a sparse message's count is not tied to its
        // length). 16 K values is 64 KB, within the allocation bound's slack.
        var message = WireCodec.Decode(input, input.Length, maxValues: 16 * 1024);
        if (message.JobId.Length == 0 || message.Sender.Length == 0) throw new FuzzFindingException("wire: accepted a message with an empty job id or sender");
        if (message.Generation < 0 || message.Round < 0 || message.SliceIndex < 0 || message.Offset < 0) throw new FuzzFindingException("wire: accepted a negative header field");
        foreach (float v in message.Values.Span)
        {
            if (!float.IsFinite(v)) throw new FuzzFindingException("wire: accepted a non-finite value");
        }
        return true;
    }

    /// <summary>Splits a chunk sequence (u16 little-endian length, then that many bytes, repeated) into chunks.</summary>
    public static List<byte[]> Frames(ReadOnlySpan<byte> input)
    {
        var frames = new List<byte[]>();
        while (input.Length >= 2)
        {
            int length = Math.Min(BinaryPrimitives.ReadUInt16LittleEndian(input), input.Length - 2);
            frames.Add(input.Slice(2, length).ToArray());
            input = input[(2 + length)..];
        }
        return frames;
    }

    public static byte[] Frame(IEnumerable<byte[]> chunks)
    {
        using var stream = new MemoryStream();
        Span<byte> length = stackalloc byte[2];
        foreach (var chunk in chunks)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(length, checked((ushort)chunk.Length));
            stream.Write(length);
            stream.Write(chunk);
        }
        return stream.ToArray();
    }

    private static bool Chunk(byte[] input)
    {
        var assembler = new ChunkAssembler();
        bool any = false;
        foreach (var chunk in Frames(input))
        {
            Seal(chunk);
            var result = assembler.Add(chunk);
            switch (result.Status)
            {
                case ChunkStatus.Complete when result.Message is null:
                    throw new FuzzFindingException("chunk: complete without a message");
                case ChunkStatus.Rejected when string.IsNullOrEmpty(result.Reason):
                    throw new FuzzFindingException("chunk: rejected without a reason");
                case ChunkStatus.Complete:
                    any = true;
                    break;
            }
        }
        return any;
    }

    private static bool Checkpoint(byte[] input)
    {
        var copy = (byte[])input.Clone();
        Seal(copy);
        CheckCheckpoint(CheckpointCodec.Decode(copy), copy.Length);
        return true;
    }

    private static void CheckCheckpoint(TrainingCheckpoint checkpoint, int inputLength)
    {
        long floats = checkpoint.Weights.Length + checkpoint.OptimizerBuffers.Sum(b => (long)b.Length);
        if (4 * floats > inputLength) throw new FuzzFindingException($"checkpoint: {floats} floats decoded from {inputLength} bytes");
    }

    private static bool JobCheckpoint(byte[] input)
    {
        var copy = (byte[])input.Clone();
        if (copy.Length >= 18)
        {
            int writer = BinaryPrimitives.ReadUInt16LittleEndian(copy.AsSpan(16));
            if (18 + writer <= copy.Length) Seal(copy.AsSpan(18 + writer));
        }
        var checkpoint = JobCheckpoints.Decode(copy);
        CheckCheckpoint(checkpoint.State, copy.Length);
        return true;
    }

    private static bool Idx(byte[] input) => WithTempFile(".idx", input, path =>
    {
        int expected = input.Length > 3 && input[3] == 1 ? 1 : 3;
        var array = IdxReader.Read(path, expected);
        long product = array.Dimensions.Aggregate(1L, (a, d) => a * d);
        if (array.Dimensions.Length != expected || product != array.Data.Length) throw new FuzzFindingException("idx: accepted an array whose dimensions do not match its data");
        return true;
    });

    private static bool Faults(byte[] input) => WithTempFile(".scenario", input, path =>
    {
        var plan = FaultPlan.ParseFile(path);
        plan.Validate(workers: 4, hasParameterServer: true, rounds: 100, serverless: true);
        // What the grammar promises of an accepted plan: fractions between 0 and 1, finite non-negative durations.
        foreach (double p in new[] { plan.Bus.DropProbability, plan.Bus.DuplicateProbability, plan.Bus.DelayProbability, plan.Functions.CrashProbability, plan.Functions.TimeoutProbability })
        {
            if (p is not (>= 0 and <= 1)) throw new FuzzFindingException($"faults: accepted probability {p}");
        }
        foreach (double d in plan.NodeFaults.Select(f => f.DelayMs).Append(plan.Bus.DelayMs).Append(plan.Functions.ColdStartMs ?? 0))
        {
            if (!double.IsFinite(d) || d < 0) throw new FuzzFindingException($"faults: accepted duration {d} ms");
        }
        return true;
    });

    private static bool Prices(byte[] input) => WithTempFile(".json", input, path =>
    {
        PriceTable.Load(path);
        return true;
    });

    private static bool Platforms(byte[] input) => WithTempFile(".json", input, path =>
    {
        if (PlatformProfile.LoadAll(path).Count == 0) throw new FuzzFindingException("platforms: loaded an empty list");
        return true;
    });

    private static bool Prediction(byte[] input)
    {
        if (input.Length == 0) return false;
        using var stream = new MemoryStream(input, 1, input.Length - 1, writable: false);
        var body = System.IO.Pipelines.PipeReader.Create(stream);
        // The JSON body limit the server derives from its image limit (ServingOptions): a request past it is refused unread.
        long maxJsonBytes = (long)MaxImages * (PredictionRequest.PixelsPerImage * 26 + 64) + 4096;
        var parsed = (input[0] % 2 == 0
            ? PredictionRequest.ReadJsonAsync(body, MaxImages, maxJsonBytes, CancellationToken.None)
            : PredictionRequest.ReadBytesAsync(body, MaxImages, CancellationToken.None)).GetAwaiter().GetResult();
        if ((parsed.Pixels is null) == (parsed.Problem is null)) throw new FuzzFindingException("prediction: a result must hold pixels or a problem, not both or neither");
        if (parsed.Pixels is { } pixels)
        {
            if (pixels.Length == 0 || pixels.Length % PredictionRequest.PixelsPerImage != 0 || pixels.Length / PredictionRequest.PixelsPerImage > MaxImages)
            {
                throw new FuzzFindingException($"prediction: accepted {pixels.Length} pixels");
            }
            foreach (float p in pixels)
            {
                if (p is not (>= 0 and <= 255)) throw new FuzzFindingException($"prediction: accepted pixel {p}");
            }
        }
        return parsed.Pixels is not null;
    }

    private static readonly string TempDirectory = Path.Combine(Path.GetTempPath(), $"daprtrain-fuzz-{Environment.ProcessId}");

    /// <summary>The file parsers read a path: the input is written to a per-process, per-thread temporary file first.</summary>
    private static bool WithTempFile(string extension, byte[] input, Func<string, bool> parse)
    {
        Directory.CreateDirectory(TempDirectory);
        string path = Path.Combine(TempDirectory, $"input-{Environment.CurrentManagedThreadId}{extension}");
        File.WriteAllBytes(path, input);
        return parse(path);
    }
}
