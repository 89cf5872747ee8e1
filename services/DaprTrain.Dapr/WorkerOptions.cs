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
        return number > workers ? ValidateOptionsResult.Fail($"WorkerId {options.WorkerId} is beyond Workers = {workers}.") : ValidateOptionsResult.Success;
    }
}
