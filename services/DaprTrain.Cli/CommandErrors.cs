using System.Security;
using DaprTrain.Simulation.Faults;
using DaprTrain.Training;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

/// <summary>One line per failure, and the exit code that says whose it was: the options' or the input's (and the environment's).</summary>
internal static class CommandErrors
{
    public static async Task<int> RunAsync(TextWriter error, Func<Task<int>> command)
    {
        try
        {
            return await command();
        }
        catch (FaultSpecException ex) when (ex.InFile)
        {
            // A scenario file with an error is bad input, like any other file.
            error.WriteLine($"error: {ex.Message}");
            return ExitCodes.InvalidInput;
        }
        catch (Exception ex) when (ex is FaultSpecException or ArgumentException or TrainingDivergedException)
        {
            error.WriteLine($"error: {ex.Message}");
            return ExitCodes.InvalidOptions;
        }
        catch (Exception ex) when (IsBadInputOrEnvironment(ex))
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

    /// <summary>
    /// What bad input or a bad environment throws: missing or corrupt data and checkpoints, and every failure of the file
    /// system (IOException covers missing files and folders, full disks, paths too long, sharing violations; a folder
    /// that may not be written throws UnauthorizedAccessException).
    /// </summary>
    public static bool IsBadInputOrEnvironment(Exception ex) =>
        ex is DataNotFoundException or IdxFormatException or CheckpointFormatException or InvalidDataException
            or IOException or UnauthorizedAccessException or SecurityException or NotSupportedException;
}

/// <summary>A run whose loss or weights stopped being finite numbers: nothing after it would mean anything.</summary>
internal sealed class TrainingDivergedException(string message) : Exception(message);
