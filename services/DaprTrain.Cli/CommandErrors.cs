using DaprTrain.Simulation.Faults;
using DaprTrain.Training;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

/// <summary>One line per failure, and the exit code that says whose it was: the options' or the input's.</summary>
internal static class CommandErrors
{
    public static async Task<int> RunAsync(TextWriter error, Func<Task<int>> command)
    {
        try
        {
            return await command();
        }
        catch (Exception ex) when (ex is FaultSpecException or ArgumentException)
        {
            error.WriteLine($"error: {ex.Message}");
            return ExitCodes.InvalidOptions;
        }
        catch (Exception ex) when (ex is DataNotFoundException or IdxFormatException or CheckpointFormatException or IOException or InvalidDataException)
        {
            error.WriteLine($"error: {ex.Message}");
            return ExitCodes.InvalidInput;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("cancelled");
            return ExitCodes.Cancelled;
        }
    }
}
