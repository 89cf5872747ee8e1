using System.Globalization;
using System.Text;

namespace DaprTrain.Simulation;

/// <summary>
/// Reads the small text inputs of a run (scenario files, price tables, platform profiles) with a size limit, so a
/// device, a pipe or a huge file is refused with a message naming it instead of hanging the command.
/// </summary>
public static class BoundedFile
{
    /// <summary>The most any of these inputs may hold: far more than a real one needs.</summary>
    public const int MaxBytes = 1 << 20;

    /// <summary>The text of <paramref name="path"/>, at most <paramref name="maxBytes"/> bytes of it; <paramref name="what"/> names the input in errors.</summary>
    public static string ReadAllText(string path, string what, int maxBytes = MaxBytes)
    {
        if (Directory.Exists(path)) throw new InvalidDataException($"{what} '{path}' is a folder, not a file");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        if (stream.CanSeek && stream.Length > maxBytes) throw new InvalidDataException($"{what} '{path}' is larger than {maxBytes:N0} bytes");
        // Memory in proportion to what the file holds (grown as it arrives where its length is unknown), never the limit up front.
        var buffer = new MemoryStream(stream.CanSeek ? (int)stream.Length + 1 : 4096);
        var block = new byte[4096];
        int read;
        while ((read = stream.Read(block, 0, (int)Math.Min(block.Length, maxBytes + 1 - buffer.Length))) > 0)
        {
            buffer.Write(block, 0, read);
            if (buffer.Length > maxBytes) throw new InvalidDataException($"{what} '{path}' is larger than {maxBytes:N0} bytes or not a regular file");
        }
        return new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetString(buffer.GetBuffer(), 0, (int)buffer.Length).TrimStart('\uFEFF');
    }

    /// <summary>Text from a file as it may be echoed to a terminal: anything but printable ASCII as \xNN or \uNNNN, cut at <paramref name="max"/> characters.</summary>
    public static string Printable(string text, int max = 200)
    {
        var builder = new StringBuilder();
        foreach (char c in text.Length > max ? text[..max] : text)
        {
            if (c is >= ' ' and <= '~') builder.Append(c);
            else if (c == '\t') builder.Append("\\t");
            else if (c <= 0xFF) builder.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        }
        if (text.Length > max) builder.Append("...");
        return builder.ToString();
    }
}
