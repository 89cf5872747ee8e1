using System.Collections.Concurrent;
using System.Diagnostics;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>A process the tests start (a service, daprd, Redis); killed, whatever happens, when disposed.</summary>
public sealed class ServiceProcess : IDisposable
{
    private readonly Process _process;

    /// <summary>A .NET service from its build output: dotnet its.dll.</summary>
    public ServiceProcess(string name, string dll, IReadOnlyDictionary<string, string> environment)
        : this(name, "dotnet", [dll], environment, Path.GetDirectoryName(dll)!)
    {
    }

    public ServiceProcess(string name, string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment, string workingDirectory)
    {
        Name = name;
        var start = new ProcessStartInfo(fileName, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var (key, value) in environment) start.Environment[key] = value;
        _process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {fileName}");
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) Output.Enqueue(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Output.Enqueue(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Name { get; }

    public int Id => _process.Id;

    public ConcurrentQueue<string> Output { get; } = new();

    public bool Exited => _process.HasExited;

    /// <summary>CPU time (user + system) the process has used so far: the bench's CPU a round (issue 16).</summary>
    public TimeSpan Cpu
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    /// <summary>SIGKILL: no shutdown, no leave, no flush, as when a node dies.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    public string Tail(int lines = 15) => $"--- {Name} ---\n" + string.Join("\n", Output.TakeLast(lines));

    public void Dispose()
    {
        try
        {
            Kill();
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
