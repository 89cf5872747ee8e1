namespace DaprTrain.Coordination;

/// <summary>
/// Where a worker's gradients are computed: in its own long-running process (a VM or a pod), or fanned out to
/// stateless serverless functions, one per share of the batch (arXiv 2309.14139), billed per invocation.
/// Orthogonal to the <see cref="Topology"/>: every topology runs in either mode.
/// </summary>
public enum ComputeMode
{
    Vm,
    Serverless,
}

public static class ComputeModes
{
    public const ComputeMode Default = ComputeMode.Vm;

    public static IReadOnlyList<ComputeMode> All { get; } = [ComputeMode.Vm, ComputeMode.Serverless];

    public static IReadOnlyList<string> Names { get; } = [.. All.Select(Name)];

    public static string Name(this ComputeMode mode) => mode switch
    {
        ComputeMode.Vm => "vm",
        ComputeMode.Serverless => "serverless",
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "not a compute mode"),
    };

    public static ComputeMode Parse(string name)
    {
        foreach (var candidate in All)
        {
            if (string.Equals(candidate.Name(), name?.Trim(), StringComparison.OrdinalIgnoreCase)) return candidate;
        }
        throw new ArgumentException($"unknown compute mode '{name}' (known: {string.Join(", ", Names)})");
    }
}
