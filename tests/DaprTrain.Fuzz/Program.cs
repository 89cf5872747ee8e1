using DaprTrain.Fuzz;
using SharpFuzz;

// DaprTrain.Fuzz <target>                     one AFL++ target (SharpFuzz; see README.md), reading inputs as afl-fuzz hands them over
// DaprTrain.Fuzz --run <target> <file>...     runs the target on each file and prints the outcome (reproduces a crash without AFL)
// DaprTrain.Fuzz --write-corpus <directory>   writes the seed corpus: <directory>/<target>/<seed>
// DaprTrain.Fuzz --list                       the targets
if (args is ["--list"])
{
    foreach (var target in FuzzTargets.All) Console.WriteLine($"{target.Name,-16} {target.Description}");
    return 0;
}
if (args is ["--write-corpus", var directory])
{
    foreach (var target in FuzzTargets.All)
    {
        string folder = Path.Combine(directory, target.Name);
        Directory.CreateDirectory(folder);
        foreach (var (seedName, bytes) in target.Seeds())
        {
            if (FuzzTargets.Execute(target, bytes) != FuzzOutcome.Accepted) throw new InvalidOperationException($"seed {seedName} of {target.Name} is not accepted");
            File.WriteAllBytes(Path.Combine(folder, seedName), bytes);
        }
        Console.WriteLine($"{target.Name}: {target.Seeds().Count} seeds in {folder}");
    }
    return 0;
}
if (args is ["--run", var runTarget, .. var files])
{
    var target = FuzzTargets.Get(runTarget);
    int failures = 0;
    foreach (string file in files)
    {
        try
        {
            Console.WriteLine($"{file}: {FuzzTargets.Execute(target, File.ReadAllBytes(file))}");
        }
        catch (FuzzFindingException ex)
        {
            failures++;
            Console.WriteLine($"{file}: FINDING {ex.Message}");
            if (ex.InnerException is { } inner) Console.WriteLine(inner);
        }
    }
    return failures == 0 ? 0 : 1;
}
if (args is [var name])
{
    var target = FuzzTargets.Get(name);
    Fuzzer.OutOfProcess.Run(stream =>
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        FuzzTargets.Execute(target, buffer.ToArray());
    });
    return 0;
}
Console.Error.WriteLine("usage: DaprTrain.Fuzz <target> | --run <target> <file>... | --write-corpus <directory> | --list");
return 2;
