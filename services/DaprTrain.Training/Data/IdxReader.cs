using System.Buffers.Binary;
using System.IO.Compression;

namespace DaprTrain.Training.Data;

public sealed class IdxFormatException(string path, string problem)
    : Exception($"{path}: {problem}")
{
    public string Path { get; } = path;

    public string Problem { get; } = problem;
}

/// <summary>The IDX format of MNIST (big-endian magic 0x0000TTDD, DD dimension sizes, then data), raw or gzip.</summary>
public static class IdxReader
{
    public const int UnsignedByteType = 0x08;

    public sealed record IdxArray(int[] Dimensions, byte[] Data);

    public static IdxArray Read(string path, int expectedDimensionCount)
    {
        byte[] bytes;
        try
        {
            bytes = ReadAllMaybeGzip(path);
        }
        catch (InvalidDataException ex)
        {
            throw new IdxFormatException(path, $"not a valid gzip stream ({ex.Message}).");
        }
        return Parse(path, bytes, expectedDimensionCount);
    }

    public static IdxArray Parse(string path, ReadOnlySpan<byte> bytes, int expectedDimensionCount)
    {
        if (bytes.Length < 4) throw new IdxFormatException(path, $"truncated: {bytes.Length} bytes, too short for the 4-byte magic number.");
        if (bytes[0] != 0 || bytes[1] != 0)
        {
            throw new IdxFormatException(path, $"wrong magic number 0x{BinaryPrimitives.ReadUInt32BigEndian(bytes):X8} (an IDX file starts with two zero bytes).");
        }
        if (bytes[2] != UnsignedByteType)
        {
            throw new IdxFormatException(path, $"unsupported element type 0x{bytes[2]:X2} in magic number (only unsigned byte, 0x08, is supported).");
        }
        int dimensionCount = bytes[3];
        if (dimensionCount != expectedDimensionCount)
        {
            throw new IdxFormatException(path, $"wrong dimensions: the magic number says {dimensionCount}, expected {expectedDimensionCount}.");
        }
        int headerLength = 4 + 4 * dimensionCount;
        if (bytes.Length < headerLength) throw new IdxFormatException(path, $"truncated: the header needs {headerLength} bytes, the file has {bytes.Length}.");

        var dimensions = new int[dimensionCount];
        long expectedData = 1;
        for (int d = 0; d < dimensionCount; d++)
        {
            uint size = BinaryPrimitives.ReadUInt32BigEndian(bytes[(4 + 4 * d)..]);
            if (size == 0 || size > int.MaxValue) throw new IdxFormatException(path, $"dimension {d} has invalid size {size}.");
            dimensions[d] = (int)size;
            expectedData *= size;
            if (expectedData > int.MaxValue) throw new IdxFormatException(path, "the declared data size exceeds 2 GiB.");
        }
        long actualData = bytes.Length - headerLength;
        if (actualData < expectedData)
        {
            throw new IdxFormatException(path, $"truncated: dimensions {string.Join("x", dimensions)} need {expectedData} data bytes, the file has {actualData}.");
        }
        if (actualData > expectedData)
        {
            throw new IdxFormatException(path, $"{actualData - expectedData} unexpected bytes after the {expectedData} data bytes that dimensions {string.Join("x", dimensions)} declare.");
        }
        return new IdxArray(dimensions, bytes[headerLength..].ToArray());
    }

    private static byte[] ReadAllMaybeGzip(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> head = stackalloc byte[2];
        int read = file.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        file.Position = 0;
        using var output = new MemoryStream();
        if (read == 2 && head[0] == 0x1f && head[1] == 0x8b)
        {
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            gzip.CopyTo(output);
        }
        else
        {
            file.CopyTo(output);
        }
        return output.ToArray();
    }
}
