namespace DaprTrain.Cli.Tests;

internal sealed record CliResult(int ExitCode, string Output, string Error);

internal static class CliRun
{
    public static async Task<CliResult> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await CliApp.RunAsync(args, output, error);
        return new CliResult(code, output.ToString(), error.ToString());
    }
}
