using System.CommandLine;

namespace DaprTrain.Cli;

public static class CliApp
{
    public static RootCommand Create(TextWriter output, TextWriter error)
    {
        var root = new RootCommand("DaprTrain: data-parallel training of TorchSharp models, parameter server against peer-to-peer, with faults and costs.");
        root.Subcommands.Add(TrainCommand.Create(output, error));
        root.Subcommands.Add(CompareCommand.Create(output, error));
        root.Subcommands.Add(BenchCommand.Create(output));
        root.Subcommands.Add(PredictCommand.Create(output, error));
        root.Subcommands.Add(ExportCommand.Create(output, error));
        return root;
    }

    public static Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var root = Create(output, error);
        ParseResult parsed;
        try
        {
            parsed = root.Parse(args);
        }
        catch (InvalidOperationException ex)
        {
            // An option validator read a value that does not convert ("--workers abc"): System.CommandLine throws
            // from the validator instead of reporting it. It is a bad option like any other.
            error.WriteLine($"error: {ex.Message}");
            return Task.FromResult(ExitCodes.InvalidOptions);
        }
        return parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cancellationToken);
    }
}
