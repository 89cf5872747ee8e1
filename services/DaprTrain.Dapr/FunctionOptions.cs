using System.ComponentModel.DataAnnotations;

namespace DaprTrain.Dapr;

/// <summary>
/// Serverless compute over Dapr (section "Functions"; FUNCTIONS__* in dapr.yaml and the chart): a worker splits each
/// batch into <see cref="Shares"/> shares and has the gradient-function app (<see cref="AppId"/>) compute them through
/// Dapr service invocation. Off (<see cref="Enabled"/> false) the worker computes its batch itself.
/// </summary>
public sealed class FunctionOptions : IValidatableObject
{
    public const string Section = "Functions";

    /// <summary>Fan each batch out to the gradient-function app instead of computing it in the worker.</summary>
    public bool Enabled { get; set; }

    /// <summary>The function app's Dapr app id (the id its sidecar runs under; any number of instances share it).</summary>
    [Required, RegularExpression("^[a-z0-9]([-a-z0-9]{0,62})$", ErrorMessage = "Functions:AppId must be a Dapr app id: lower-case letters, digits and dashes.")]
    public string AppId { get; set; } = DaprTrain.Contracts.DaprApps.GradientFunction;

    /// <summary>Invocations per batch (arXiv 2309.14139 runs one function per mini-batch share), in parallel.</summary>
    [Range(1, 64)]
    public int Shares { get; set; } = 2;

    /// <summary>How long one attempt may take, cold start included, before it is abandoned and retried.</summary>
    [Range(100, 900_000)]
    public int TimeoutMs { get; set; } = 30_000;

    /// <summary>Attempts per share before the worker computes it itself (a retry may reach another instance).</summary>
    [Range(1, 100)]
    public int Attempts { get; set; } = 4;

    /// <summary>The wait before the first retry, doubled for each further one (capped at 5 s): time for a scaler to start an instance.</summary>
    [Range(0, 60_000)]
    public int RetryBackoffMs { get; set; } = 250;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Enabled && (long)TimeoutMs * Attempts > 3_600_000)
        {
            yield return new ValidationResult($"Functions:TimeoutMs {TimeoutMs} x Functions:Attempts {Attempts} lets one share wait over an hour; lower one of them.", [nameof(TimeoutMs)]);
        }
    }

    /// <summary>The wait before attempt <paramref name="attempt"/> (2, 3, ...).</summary>
    public TimeSpan BackoffBefore(int attempt) => TimeSpan.FromMilliseconds(Math.Min(5_000, RetryBackoffMs * Math.Pow(2, attempt - 2)));
}
