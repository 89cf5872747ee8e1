using DaprTrain.Simulation.Compute;

namespace DaprTrain.Simulation.Accounting;

/// <summary>
/// A run's cost in the deployments DaprTrain compares, from the same run's virtual time (measured compute plus models)
/// and the price table and platform profile (each naming its source and date). All figures are modelled.
/// </summary>
/// <param name="VmUsd">Every node on an instance of its own while it is up, billed per second with the table's minimum.</param>
/// <param name="FunctionsUsd">The gradient functions of a serverless run: billed durations x memory (and vCPUs) plus requests.</param>
/// <param name="OrchestrationUsd">State transitions of the fan-out workflow (Step Functions), where the platform charges them.</param>
/// <param name="ChannelUsd">The exchange channel (broker and state store) for the run; the same in every mode.</param>
/// <param name="NodeStepsUsd">Every node's round as a function invocation, its wait at the round's barrier billed (SPIRT, LambdaML).</param>
public sealed record Billing(double VmUsd, double FunctionsUsd, double OrchestrationUsd, double ChannelUsd, double NodeStepsUsd)
{
    /// <summary>Peers (and the server) on instances; gradients in functions where the run used them (arXiv 2309.14139).</summary>
    public double InstancesUsd => VmUsd + FunctionsUsd + OrchestrationUsd + ChannelUsd;

    /// <summary>Everything in functions: the nodes' own steps are invocations too (SPIRT, LambdaML).</summary>
    public double AllFunctionsUsd => NodeStepsUsd + FunctionsUsd + OrchestrationUsd + ChannelUsd;

    public static Billing Of(PriceTable prices, PlatformProfile platform, IReadOnlyList<NodeMetrics> nodes, IReadOnlyList<RoundRecord> rounds,
        FunctionReport? functions, double runMs, bool hasServer)
    {
        double vm = nodes.Where(n => n.AliveMs > 0).Sum(n => VmBilledSeconds(prices, n.AliveMs)) * prices.VmPerHour / 3600.0;
        double channel = runMs / 3_600_000.0 * prices.ChannelPerHour;
        // A node's step per round lasts from the round's start to its end, waiting included; it is an invocation of its own.
        double steps = 0;
        foreach (var round in rounds)
        {
            double billed = platform.BilledMs(round.EndMs - round.StartMs);
            int invocations = round.Members + (hasServer ? 1 : 0);
            steps += invocations * platform.InvocationUsd(billed);
        }
        return new Billing(vm, functions?.FunctionsUsd ?? 0, functions?.OrchestrationUsd ?? 0, channel, steps);
    }

    /// <summary>Per-second billing of an instance that was up <paramref name="aliveMs"/>, never less than the minimum.</summary>
    public static double VmBilledSeconds(PriceTable prices, double aliveMs) => Math.Max(prices.VmMinimumBilledSeconds, Math.Ceiling(aliveMs / 1000.0));
}
