using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace DaprTrain.Dapr;

/// <summary>
/// Who this worker is: bound by the worker only, from the same "Job" section as the job (JOB__WORKERID in dapr.yaml and
/// the chart), so that a parameter server never carries a worker id it does not have.
/// </summary>
public sealed class WorkerOptions
{
    public const string Section = TrainingJobOptions.Section;

    /// <summary>This worker's id, worker-1 .. worker-N (its data shard is N-1 while all workers are present).</summary>
    [Required, RegularExpression("^worker-[1-9][0-9]*$")]
    public string WorkerId { get; set; } = "worker-1";

    /// <summary>
    /// Job:Attack, for experiments only: this worker turns Byzantine and bends every gradient it sends (signflip[:S],
    /// gaussian[:sigma], noise[:sigma], labelflip, alie[:z] or zero, optionally @round=R). Empty: an honest worker. ALIE
    /// (p2p only) makes its gradient from the round's other gradients, which a p2p worker receives from its peers' topics anyway:
    /// it waits for them (up to the round's deadline) before it sends its own, an insider that reads before it writes.
    /// Under ps a worker never sees another's gradient, and under p2p-scatter only slices of them, so ALIE is refused there.
    /// </summary>
    public string? Attack { get; set; }

    /// <summary>The parsed attack (valid once the options are validated); null for an honest worker.</summary>
    public DaprTrain.Engine.Aggregation.GradientAttack? ParsedAttack() =>
        string.IsNullOrWhiteSpace(Attack) ? null : DaprTrain.Engine.Aggregation.GradientAttack.Parse(Attack);
}

/// <summary>A worker id names one of the job's workers.</summary>
public sealed class WorkerOptionsValidation(IOptions<TrainingJobOptions> job) : IValidateOptions<WorkerOptions>
{
    public ValidateOptionsResult Validate(string? name, WorkerOptions options)
    {
        if (!options.WorkerId.StartsWith("worker-", StringComparison.Ordinal)
            || !int.TryParse(options.WorkerId.AsSpan(7), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int number))
        {
            return ValidateOptionsResult.Skip; // the data annotations name the problem
        }
        int workers = job.Value.Workers;
        if (number > workers) return ValidateOptionsResult.Fail($"WorkerId {options.WorkerId} is beyond Workers = {workers}.");
        if (string.IsNullOrWhiteSpace(options.Attack)) return ValidateOptionsResult.Success;
        try
        {
            return options.ParsedAttack()!.NeedsHonestGradients && job.Value.Topology != DaprTrain.Coordination.Topology.PeerToPeer
                ? ValidateOptionsResult.Fail($"Job:Attack '{options.Attack}': alie needs the round's other gradients, which a {job.Value.TopologyName} worker never receives whole; use Job:Topology p2p, or the embedded mode (daprtrain --fault byzantine:worker-N=alie), whose colluders are handed them.")
                : ValidateOptionsResult.Success;
        }
        catch (ArgumentException ex)
        {
            return ValidateOptionsResult.Fail($"Job:Attack: {ex.Message}.");
        }
    }
}
