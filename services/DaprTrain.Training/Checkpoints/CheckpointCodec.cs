using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using DaprTrain.Training.Parameters;

namespace DaprTrain.Training;

public sealed class CheckpointFormatException(string message) : Exception(message);

/// <summary>Everything needed to continue training exactly where it stopped.</summary>
public sealed record TrainingCheckpoint(
    string Model,
    OptimizerSettings Optimizer,
    long Step,
    long OptimizerStep,
    ulong SamplerSeed,
    int Epoch,
    int Position,
    float[] Weights,
    float[][] OptimizerBuffers);

/// <summary>
/// Binary checkpoint format, little-endian:
/// magic "DTCK", u16 format version, u16 reserved, then the header fields, the weights and optimizer
/// buffers as raw float32, and last an XxHash3-64 of every byte before it. Decoding checks magic,
/// version and checksum before it reads a single field.
/// </summary>
public static class CheckpointCodec
{
    public const ushort FormatVersion = 1;
    private static ReadOnlySpan<byte> Magic => "DTCK"u8;
    private const int TrailerLength = sizeof(ulong);

    public static byte[] Encode(TrainingCheckpoint checkpoint)
    {
        // Every byte is written by Encode(.., Span); skipping the zeroing matters for multi-megabyte checkpoints.
        var bytes = GC.AllocateUninitializedArray<byte>(EncodedLength(checkpoint));
        Encode(checkpoint, bytes);
        return bytes;
    }

    public static int EncodedLength(TrainingCheckpoint checkpoint)
    {
        long payload = 4L * checkpoint.Weights.Length + checkpoint.OptimizerBuffers.Sum(b => 4L * b.Length);
        long header = 8 + (4 + Encoding.UTF8.GetByteCount(checkpoint.Model)) + (4 + 8 * 5) + 8 * 3 + 4 * 4 + 4 * checkpoint.OptimizerBuffers.Length;
        long total = header + payload + TrailerLength;
        if (total > Array.MaxLength) throw new ArgumentException("checkpoint too large for one buffer");
        return (int)total;
    }

    /// <summary>Encodes into a caller's buffer (a checkpoint writer can reuse one); returns the bytes written.</summary>
    public static int Encode(TrainingCheckpoint checkpoint, Span<byte> destination)
    {
        int length = EncodedLength(checkpoint);
        if (destination.Length < length) throw new ArgumentException($"destination holds {destination.Length} bytes; the checkpoint needs {length}.", nameof(destination));
        byte[] model = Encoding.UTF8.GetBytes(checkpoint.Model);
        var writer = new SpanWriter(destination);
        writer.Write(Magic);
        writer.WriteU16(FormatVersion);
        writer.WriteU16(0);
        writer.WriteI32(model.Length);
        writer.Write(model);
        var o = checkpoint.Optimizer;
        writer.WriteI32((int)o.Kind);
        writer.WriteF64(o.LearningRate);
        writer.WriteF64(o.Momentum);
        writer.WriteF64(o.Beta1);
        writer.WriteF64(o.Beta2);
        writer.WriteF64(o.Epsilon);
        writer.WriteI64(checkpoint.Step);
        writer.WriteI64(checkpoint.OptimizerStep);
        writer.WriteI64((long)checkpoint.SamplerSeed);
        writer.WriteI32(checkpoint.Epoch);
        writer.WriteI32(checkpoint.Position);
        writer.WriteI32(checkpoint.Weights.Length);
        writer.WriteI32(checkpoint.OptimizerBuffers.Length);
        foreach (var buffer in checkpoint.OptimizerBuffers) writer.WriteI32(buffer.Length);
        writer.Write(MemoryMarshal.AsBytes(checkpoint.Weights.AsSpan()));
        foreach (var buffer in checkpoint.OptimizerBuffers) writer.Write(MemoryMarshal.AsBytes(buffer.AsSpan()));
        ulong hash = XxHash3.HashToUInt64(destination[..writer.Position]);
        writer.WriteU64(hash);
        return writer.Position;
    }

    public static TrainingCheckpoint Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 8 + TrailerLength) throw new CheckpointFormatException($"checkpoint truncated: {bytes.Length} bytes is shorter than any valid checkpoint.");
        if (!bytes[..4].SequenceEqual(Magic)) throw new CheckpointFormatException("not a DaprTrain checkpoint (bad magic number).");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]);
        if (version != FormatVersion)
        {
            throw new CheckpointFormatException($"unsupported checkpoint format version {version}; this build reads version {FormatVersion}.");
        }
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(bytes[^TrailerLength..]);
        ulong actual = XxHash3.HashToUInt64(bytes[..^TrailerLength]);
        if (stored != actual)
        {
            throw new CheckpointFormatException($"checkpoint checksum mismatch (stored {stored:x16}, computed {actual:x16}): the data is corrupted or truncated.");
        }

        try
        {
            var reader = new SpanReader(bytes[..^TrailerLength]);
            reader.Skip(8);
            string model = Encoding.UTF8.GetString(reader.Read(reader.ReadCount("model name", 256)));
            var kind = (OptimizerKind)reader.ReadI32();
            if (!Enum.IsDefined(kind)) throw new CheckpointFormatException($"unknown optimizer kind {(int)kind} in checkpoint.");
            var settings = new OptimizerSettings(kind, reader.ReadF64(), reader.ReadF64(), reader.ReadF64(), reader.ReadF64(), reader.ReadF64());
            long step = reader.ReadI64();
            long optimizerStep = reader.ReadI64();
            ulong samplerSeed = (ulong)reader.ReadI64();
            int epoch = reader.ReadI32();
            int position = reader.ReadI32();
            int weightCount = reader.ReadCount("weight count", int.MaxValue / 4);
            int bufferCount = reader.ReadCount("optimizer buffer count", 8);
            var bufferLengths = new int[bufferCount];
            for (int i = 0; i < bufferCount; i++) bufferLengths[i] = reader.ReadCount("optimizer buffer length", int.MaxValue / 4);
            var weights = reader.ReadFloats(weightCount);
            var buffers = new float[bufferCount][];
            for (int i = 0; i < bufferCount; i++) buffers[i] = reader.ReadFloats(bufferLengths[i]);
            if (reader.Remaining != 0) throw new CheckpointFormatException($"checkpoint has {reader.Remaining} unexpected bytes before its checksum.");
            return new TrainingCheckpoint(model, settings, step, optimizerStep, samplerSeed, epoch, position, weights, buffers);
        }
        catch (ArgumentOutOfRangeException)
        {
            throw new CheckpointFormatException("checkpoint header declares more data than the checkpoint holds.");
        }
    }

    private ref struct SpanWriter(Span<byte> target)
    {
        private readonly Span<byte> _target = target;

        public int Position { get; private set; }

        public void Write(ReadOnlySpan<byte> value) { value.CopyTo(_target[Position..]); Position += value.Length; }
        public void WriteU16(ushort v) { BinaryPrimitives.WriteUInt16LittleEndian(_target[Position..], v); Position += 2; }
        public void WriteI32(int v) { BinaryPrimitives.WriteInt32LittleEndian(_target[Position..], v); Position += 4; }
        public void WriteI64(long v) { BinaryPrimitives.WriteInt64LittleEndian(_target[Position..], v); Position += 8; }
        public void WriteU64(ulong v) { BinaryPrimitives.WriteUInt64LittleEndian(_target[Position..], v); Position += 8; }
        public void WriteF64(double v) { BinaryPrimitives.WriteDoubleLittleEndian(_target[Position..], v); Position += 8; }
    }

    private ref struct SpanReader(ReadOnlySpan<byte> source)
    {
        private readonly ReadOnlySpan<byte> _source = source;
        private int _position;

        public readonly int Remaining => _source.Length - _position;

        public void Skip(int count) => _position += count;

        public ReadOnlySpan<byte> Read(int count)
        {
            if (count > Remaining) throw new ArgumentOutOfRangeException(nameof(count));
            var slice = _source.Slice(_position, count);
            _position += count;
            return slice;
        }

        public int ReadI32() => BinaryPrimitives.ReadInt32LittleEndian(Read(4));
        public long ReadI64() => BinaryPrimitives.ReadInt64LittleEndian(Read(8));
        public double ReadF64() => BinaryPrimitives.ReadDoubleLittleEndian(Read(8));

        public int ReadCount(string what, int max)
        {
            int value = ReadI32();
            if (value < 0 || value > max) throw new CheckpointFormatException($"checkpoint {what} {value} is out of range.");
            return value;
        }

        public float[] ReadFloats(int count)
        {
            var bytes = Read(checked(count * 4));
            var values = GC.AllocateUninitializedArray<float>(count);
            bytes.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
            return values;
        }
    }
}
