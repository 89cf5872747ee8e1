using System.CommandLine;
using DaprTrain.Contracts;
using DaprTrain.Dapr;
using DaprTrain.Engine.Storage;
using DaprTrain.Training;

namespace DaprTrain.Cli;

/// <summary>
/// <c>daprtrain export</c>: an ONNX model from a checkpoint: a job checkpoint as the Dapr services and the embedded mode
/// store it (read from a file, from an embedded run's --state-dir, or from the Dapr state store through a sidecar), or a
/// single worker's --save-checkpoint file.
/// </summary>
internal static class ExportCommand
{
    /// <summary>Larger than any checkpoint of the models this build has (resnet with Adam: about 21 MB); a file over it is refused before it is read.</summary>
    public const long MaxCheckpointBytes = 256L << 20;

    public static Command Create(TextWriter output, TextWriter error)
    {
        var checkpoint = new Option<string?>("--checkpoint")
        {
            Description = "A checkpoint file: a job checkpoint (the state store's format, 'DTJC') or a single worker's --save-checkpoint file ('DTCK').",
        };
        var stateDir = new Option<string?>("--state-dir") { Description = "The --state-dir of an embedded distributed run: its job's latest checkpoint." };
        var fromDapr = new Option<bool>("--dapr")
        {
            Description = "Read the job's latest checkpoint from the Dapr state store through this process's sidecar " +
                          "(run under 'dapr run --app-id exporter --resources-path components/redis -- ...').",
        };
        var grpcEndpoint = new Option<string?>("--dapr-grpc-endpoint")
        {
            Description = "--dapr: the sidecar's gRPC endpoint (default: DAPR_GRPC_ENDPOINT or DAPR_GRPC_PORT, as the Dapr SDK reads them, which 'dapr run' sets).",
        };
        var store = new Option<string>("--state-store") { Description = "--dapr: the state store component.", DefaultValueFactory = _ => DaprComponents.StateStore };
        var jobId = new Option<string>("--job-id") { Description = "--state-dir, --dapr: the job's id.", DefaultValueFactory = _ => "daprtrain" };
        var output_ = new Option<string>("--out") { Description = "The ONNX file to write.", Required = true };
        var command = new Command("export", "Write an ONNX model from a checkpoint: a job trained by the Dapr services or the embedded mode, or a single worker's.");
        command.Options.Add(checkpoint);
        command.Options.Add(stateDir);
        command.Options.Add(fromDapr);
        command.Options.Add(grpcEndpoint);
        command.Options.Add(store);
        command.Options.Add(jobId);
        command.Options.Add(output_);
        command.SetAction((result, cancellationToken) => CommandErrors.RunAsync(error, async () =>
        {
            string? file = result.GetValue(checkpoint);
            string? folder = result.GetValue(stateDir);
            bool dapr = result.GetValue(fromDapr);
            int sources = (file is null ? 0 : 1) + (folder is null ? 0 : 1) + (dapr ? 1 : 0);
            if (sources != 1) throw new ArgumentException("name one checkpoint to export: --checkpoint FILE, --state-dir DIR or --dapr");
            string id = result.GetValue(jobId)!;
            if ((folder is not null || dapr) && !DaprTrain.Simulation.JobOptions.IsJobId(id))
            {
                throw new ArgumentException($"--job-id '{id}' must be 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or a digit (as the jobs' ids are)");
            }
            string outPath = result.GetValue(output_)!;
            OutputPaths.CheckFile(outPath, "--out");

            var (state, description) = file is not null ? await FromFileAsync(file, cancellationToken)
                : folder is not null ? await FromStoreAsync(new FileCheckpointStore(CheckFolder(folder)), id, $"--state-dir '{folder}'", cancellationToken)
                : await FromDaprAsync(result.GetValue(store)!, id, result.GetValue(grpcEndpoint), cancellationToken);
            TorchRuntime.EnsureInitialised(1);
            byte[] model = OnnxModels.Export(state.Model, state.Weights, description);
            await AtomicFile.WriteAsync(outPath, model, cancellationToken);
            // The hash the services report as a replica's weightHash (/status), so a user can tell which replica's weights these are.
            ulong hash = System.IO.Hashing.XxHash3.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(state.Weights.AsSpan()));
            output.WriteLine($"onnx: {outPath} ({model.Length:N0} bytes) from {description}: model {state.Model}, step {state.Step}, " +
                             $"weights hash {hash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture)}; " +
                             $"input '{DaprTrain.Onnx.OnnxExport.InputName}' [N,1,28,28] raw pixels, output '{DaprTrain.Onnx.OnnxExport.OutputName}' [N,10]");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static async Task<(TrainingCheckpoint State, string Description)> FromFileAsync(string path, CancellationToken cancellationToken)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"--checkpoint '{path}' does not exist", path);
        if (info.Length > MaxCheckpointBytes) throw new InvalidDataException($"--checkpoint '{path}' is {info.Length:N0} bytes, more than any checkpoint ({MaxCheckpointBytes:N0})");
        byte[] bytes = await File.ReadAllBytesAsync(path, cancellationToken);
        if (bytes.AsSpan().StartsWith("DTJC"u8))
        {
            var job = JobCheckpoints.Decode(bytes);
            return (job.State, $"job checkpoint '{path}' (round {job.Round}, generation {job.Generation}, written by {job.Writer})");
        }
        if (bytes.AsSpan().StartsWith("DTCK"u8)) return (CheckpointCodec.Decode(bytes), $"checkpoint '{path}'");
        throw new InvalidDataException($"--checkpoint '{path}' is not a DaprTrain checkpoint: neither a job checkpoint ('DTJC') nor a --save-checkpoint file ('DTCK')");
    }

    private static async Task<(TrainingCheckpoint State, string Description)> FromStoreAsync(ICheckpointStore store, string jobId, string where, CancellationToken cancellationToken)
    {
        var latest = await new JobCheckpoints(store, jobId).LoadLatestAsync(cancellationToken)
            ?? throw new InvalidDataException($"{where} holds no checkpoint of job '{jobId}'");
        var job = latest.Checkpoint;
        return (job.State, $"job '{jobId}' in {where} (round {job.Round}, generation {job.Generation}, written by {job.Writer})");
    }

    private static async Task<(TrainingCheckpoint State, string Description)> FromDaprAsync(string storeName, string jobId, string? endpoint, CancellationToken cancellationToken)
    {
        if (endpoint is not null && !Uri.TryCreate(endpoint, UriKind.Absolute, out _)) throw new ArgumentException($"--dapr-grpc-endpoint '{endpoint}' is not an absolute URL");
        // The default gRPC limit (4 MB a message) is enough: the store keeps a checkpoint as chunks of 512 KiB.
        var builder = new global::Dapr.Client.DaprClientBuilder();
        if (endpoint is not null) builder.UseGrpcEndpoint(endpoint);
        using var client = builder.Build();
        try
        {
            return await FromStoreAsync(new DaprCheckpointStore(client, storeName), jobId, $"Dapr state store '{storeName}'", cancellationToken);
        }
        catch (Exception ex) when (ex is global::Dapr.DaprException or Grpc.Core.RpcException or System.Text.Json.JsonException)
        {
            // The SDK wraps the sidecar's gRPC errors (none listening, no such store, a store this app id is not scoped to).
            var status = (ex as Grpc.Core.RpcException ?? ex.InnerException as Grpc.Core.RpcException)?.Status;
            string detail = status is { } s ? $"{s.StatusCode}: {s.Detail}" : ex.Message;
            throw new IOException($"--dapr: reading job '{jobId}' from state store '{storeName}' through the sidecar failed ({detail}); " +
                                  "run the command under 'dapr run --app-id exporter --resources-path components/redis -- ...' (the store's scopes name exporter)", ex);
        }
    }

    private static string CheckFolder(string folder) =>
        Directory.Exists(folder) ? folder : throw new DirectoryNotFoundException($"--state-dir '{folder}' does not exist");
}
