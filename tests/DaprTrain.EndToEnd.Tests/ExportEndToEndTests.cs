using System.Diagnostics;
using DaprTrain.SidecarDouble;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>
/// A model trained by the Dapr services becomes an ONNX model: `daprtrain export --dapr`, run as a process beside its own
/// sidecar, reads the job's latest checkpoint from the state store (through the same sidecar API the services wrote it
/// with, chunked as they store it), and `daprtrain predict` serves what it wrote.
/// </summary>
public sealed class ExportEndToEndTests
{
    [Fact]
    public async Task The_services_latest_checkpoint_exports_to_an_onnx_model_with_the_replicas_weights()
    {
        // 20 rounds with a checkpoint every 5: the latest checkpoint is the final round's, so its weights are the replicas'.
        var job = EndToEndScenarios.Job("p2p", 2, rounds: 20);
        await using var cluster = new Cluster(job, new DoubleSidecars());
        await cluster.StartAsync("coordinator", "DaprTrain.Coordinator");
        for (int i = 1; i <= 2; i++) await cluster.StartAsync($"worker-{i}", "DaprTrain.Worker", new() { ["Job__WorkerId"] = $"worker-{i}" });
        await cluster.FinishedAsync(["worker-1", "worker-2"], TimeSpan.FromMinutes(3));
        string replicaHash = (await cluster.StatusAsync("worker-1")).GetProperty("weightHash").GetString()!;
        (await cluster.StatusAsync("worker-2")).GetProperty("weightHash").GetString().Should().Be(replicaHash);

        // The exporter is one more Dapr app: a sidecar of its own on the shared components, no app port it serves.
        var sidecar = await cluster.SidecarProvider.StartAsync("exporter", new Uri($"http://127.0.0.1:{Sidecar.FreePort()}/"));
        string folder = Directory.CreateTempSubdirectory("daprtrain-export-").FullName;
        try
        {
            string model = Path.Combine(folder, "model.onnx");
            var export = await RunCliAsync(sidecar.AppEnvironment, "export", "--dapr", "--job-id", job["Job__JobId"], "--out", model);
            export.ExitCode.Should().Be(0, export.Error);
            export.Output.Should().Contain("(round 20,").And.Contain($"weights hash {replicaHash}", "the exported weights are the replicas' final weights");

            var predict = await RunCliAsync(new Dictionary<string, string>(), "predict", "--model", model, "--data-dir", Cluster.MnistDirectory);
            predict.ExitCode.Should().Be(0, predict.Error);
            predict.Output.Should().MatchRegex(@"accuracy (8[5-9]|9[0-9])\.[0-9]{2}%", "the services' trained model, served by ONNX Runtime");

            var missing = await RunCliAsync(sidecar.AppEnvironment, "export", "--dapr", "--job-id", "no-such-job", "--out", model);
            missing.ExitCode.Should().Be(2);
            missing.Error.Should().Contain("holds no checkpoint of job 'no-such-job'");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunCliAsync(IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        string configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
        string cli = Path.Combine(Cluster.RepositoryRoot, "services", "DaprTrain.Cli", "bin", configuration, "net10.0", "daprtrain.dll");
        if (!File.Exists(cli)) throw new FileNotFoundException($"{cli} is not built; build the solution first", cli);
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(cli);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var (key, value) in environment) start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }
}
