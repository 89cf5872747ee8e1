namespace DaprTrain.Cli;

/// <summary>
/// Checks the places a command writes to before its work starts, so a bad path fails in a second rather than after
/// the training or the comparison it was meant to keep.
/// </summary>
internal static class OutputPaths
{
    /// <summary>A file written at the end (--export-onnx, --save-checkpoint): not a folder, in a folder that exists and takes new files.</summary>
    public static void CheckFile(string path, string option)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new IOException($"{option} '{path}' is a folder; name a file");
        string folder = Path.GetDirectoryName(full) ?? full;
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{option} '{path}': the folder '{folder}' does not exist");
        ProbeWritable(folder, option, path);
    }

    /// <summary>A folder written into (compare --out, --state-dir): not an existing file; created now, and it takes new files.</summary>
    public static void CheckFolder(string path, string option)
    {
        string full = Path.GetFullPath(path);
        if (File.Exists(full)) throw new IOException($"{option} '{path}' is an existing file; name a folder");
        try
        {
            Directory.CreateDirectory(full);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{option} '{path}': the folder cannot be created ({ex.Message})", ex);
        }
        ProbeWritable(full, option, path);
    }

    private static void ProbeWritable(string folder, string option, string path)
    {
        string probe = Path.Combine(folder, $".daprtrain-probe-{Guid.NewGuid():N}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{option} '{path}': cannot write into '{folder}' ({ex.Message})", ex);
        }
    }
}
