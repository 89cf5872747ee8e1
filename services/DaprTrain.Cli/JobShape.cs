using System.Text.Json;
using DaprTrain.Coordination;
using DaprTrain.Engine.Storage;
using DaprTrain.Simulation;

namespace DaprTrain.Cli;

/// <summary>
/// What a job's checkpoints in a --state-dir were made by (topology, workers, model), stored beside them, so a resume
/// with another shape is refused instead of silently continuing a different job from them.
/// </summary>
internal sealed record JobShape(string Topology, int Workers, string Model)
{
    public static JobShape Of(JobOptions options) => new(options.Topology.Name(), options.Workers, options.Trainer.Model);

    public static string Key(string jobId) => $"{jobId}/shape";

    public override string ToString() => $"{Topology}, {Workers} workers, {Model}";

    /// <summary>On a resume, refuses a shape other than the stored one; a new job (or one stored before shapes were) records its own.</summary>
    public static async Task CheckOrRecordAsync(ICheckpointStore store, string jobId, JobShape shape, bool resuming, string folder, CancellationToken cancellationToken)
    {
        var stored = await store.GetAsync(Key(jobId), cancellationToken);
        if (resuming && stored is not null)
        {
            JobShape? saved;
            try
            {
                saved = JsonSerializer.Deserialize<JobShape>(stored.Data);
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"the shape of job '{jobId}' in {folder} is not valid JSON: {ex.Message}", ex);
            }
            if (saved is not null && saved != shape)
            {
                throw new InvalidDataException($"job '{jobId}' in {folder} was checkpointed as {saved}; this run asks for {shape}. " +
                                               "Resume it with the same topology, workers and model, or start a new job (another --job-id or --state-dir).");
            }
            if (saved is not null) return;
        }
        await store.TrySaveAsync(Key(jobId), JsonSerializer.SerializeToUtf8Bytes(shape), stored?.ETag, cancellationToken);
    }
}
