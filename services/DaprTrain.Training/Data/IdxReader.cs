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
        try
        {
            using var file = File.OpenRead(path);
            Span<byte> head = stackalloc byte[2];
            int read = file.ReadAtLeast(head, 2, throwOnEndOfStream: false);
            file.Position = 0;
            if (read == 2 && head[0] == 0x1f && head[1] == 0x8b)
            {
                using var gzip = new GZipStream(file, CompressionMode.Decompress);
                return Parse(path, ReadDeclared(path, gzip, expectedDimensionCount).Span, expectedDimensionCount);
            }
            return Parse(path, ReadDeclared(path, file, expectedDimensionCount).Span, expectedDimensionCount);
        }
        catch (InvalidDataException ex)
        {
            throw new IdxFormatException(path, $"not a valid gzip stream ({ex.Message}).");
        }
    }

    public static IdxArray Parse(string path, ReadOnlySpan<byte> bytes, int expectedDimensionCount)
    {
        long expectedData = ParseHeader(path, bytes, expectedDimensionCount, out var dimensions);
        int headerLength = 4 + 4 * dimensions.Length;
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

    /// <summary>Checks the magic number and the dimensions; returns the number of data bytes they declare.</summary>
    private static long ParseHeader(string path, ReadOnlySpan<byte> bytes, int expectedDimensionCount, out int[] dimensions)
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

        dimensions = new int[dimensionCount];
        long expectedData = 1;
        for (int d = 0; d < dimensionCount; d++)
        {
            uint size = BinaryPrimitives.ReadUInt32BigEndian(bytes[(4 + 4 * d)..]);
            if (size == 0 || size > int.MaxValue) throw new IdxFormatException(path, $"dimension {d} has invalid size {size}.");
            dimensions[d] = (int)size;
            expectedData *= size;
            if (expectedData > int.MaxValue) throw new IdxFormatException(path, "the declared data size exceeds 2 GiB.");
        }
        return expectedData;
    }

    /// <summary>
    /// Reads the header and no more data than it declares (plus one byte, to tell that there is more): a small gzip
    /// file that inflates to gigabytes is rejected after the declared size, not after it has filled memory, and a
    /// header that declares gigabytes costs only the bytes that are really there. Whatever is wrong is left for
    /// <see cref="Parse"/> to name, except data beyond the declared size, which is named here.
    /// </summary>
    private static ReadOnlyMemory<byte> ReadDeclared(string path, Stream source, int expectedDimensionCount)
    {
        var header = new byte[4 + 4 * byte.MaxValue];
        int have = source.ReadAtLeast(header.AsSpan(0, 4), 4, throwOnEndOfStream: false);
        if (have < 4) return header.AsMemory(0, have);
        int headerLength = 4 + 4 * header[3];
        have += source.ReadAtLeast(header.AsSpan(4, headerLength - 4), headerLength - 4, throwOnEndOfStream: false);
        if (have < headerLength) return header.AsMemory(0, have);
        long declared = ParseHeader(path, header.AsSpan(0, headerLength), expectedDimensionCount, out _);

        long limit = headerLength + declared + 1;
        // A file's size is known, so its buffer is allocated once; an inflating stream's grows with what arrives.
        long capacity = Math.Min(limit, source.CanSeek ? source.Length - source.Position + headerLength : 64 * 1024);
        using var output = new MemoryStream((int)capacity);
        output.Write(header, 0, headerLength);
        var block = new byte[16 * 1024];
        while (output.Length < limit)
        {
            int read = source.Read(block, 0, (int)Math.Min(block.Length, limit - output.Length));
            if (read == 0) break;
            output.Write(block, 0, read);
        }
        if (output.Length == limit)
        {
            // A file knows how much it holds beyond the declared data; a gzip stream is not inflated any further to count it.
            string excess = source.CanSeek ? $"{source.Length - headerLength - declared}" : "more";
            throw new IdxFormatException(path, $"{excess} unexpected bytes after the {declared} data bytes that dimensions {string.Join("x", ParseDimensions(header, headerLength))} declare.");
        }
        return output.GetBuffer().AsMemory(0, (int)output.Length);
    }

    private static IEnumerable<uint> ParseDimensions(byte[] header, int headerLength)
    {
        for (int offset = 4; offset < headerLength; offset += 4) yield return BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(offset));
    }
}
