namespace DaprTrain.Cli;

public static class ExitCodes
{
    public const int Success = 0;

    /// <summary>System.CommandLine's own code for options that do not parse or validate.</summary>
    public const int InvalidOptions = 1;

    /// <summary>The options were fine but the input (data, checkpoint, scenario file) was not.</summary>
    public const int InvalidInput = 2;

    public const int Cancelled = 130;
}
