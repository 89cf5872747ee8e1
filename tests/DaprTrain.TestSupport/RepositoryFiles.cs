namespace DaprTrain.Training.Tests;

/// <summary>Files of the repository the tests read (scripts, schemas): found by walking up from the test output to DaprTrain.sln.</summary>
public static class RepositoryFiles
{
    public static string Root { get; } = Locate();

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string Locate()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "DaprTrain.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("DaprTrain.sln not found above the test output");
    }
}
