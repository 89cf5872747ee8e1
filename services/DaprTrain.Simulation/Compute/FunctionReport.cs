namespace DaprTrain.Simulation.Compute;

/// <summary>What the gradient functions of a serverless run did and cost (modelled on the profile; compute measured).</summary>
public sealed record FunctionReport(
    string Platform,
    string Source,
    string Date,
    int FunctionsPerWorker,
    int MemoryMb,
    double Vcpus,
    double CpuFactor,
    long Invocations,
    long ColdStarts,
    long WarmStarts,
    long Crashes,
    long Timeouts,
    long Throttled,
    long Fallbacks,
    int PeakInstances,
    double RunMs,
    double BilledMs,
    double FunctionsUsd,
    long Transitions,
    double OrchestrationUsd,
    double MeanRoundComputeMs)
{
    public long Retries => Crashes + Timeouts;

    public double GbSeconds(double memoryGb) => BilledMs / 1000.0 * memoryGb;
}

/// <summary>The running totals behind a <see cref="FunctionReport"/>.</summary>
internal sealed class FunctionLedger
{
    public long Invocations { get; set; }

    public long ColdStarts { get; set; }

    public long WarmStarts { get; set; }

    public long Crashes { get; set; }

    public long Timeouts { get; set; }

    public long Throttled { get; set; }

    public long Fallbacks { get; set; }

    public int InstancesStarted { get; set; }

    public int PeakInstances { get; set; }

    public long FanOuts { get; set; }

    public double RunMs { get; set; }

    public double BilledMs { get; set; }

    public double Usd { get; set; }

    public long Transitions { get; set; }

    public List<double> RoundComputeMs { get; } = [];

    public FunctionReport ToReport(PlatformProfile platform, int functions, double cpuFactor)
    {
        long transitions = Transitions + FanOuts * platform.TransitionsPerFanOut;
        return new FunctionReport(platform.Name, platform.Source, platform.Date, functions, platform.MemoryMb, platform.Vcpus, cpuFactor,
            Invocations, ColdStarts, WarmStarts, Crashes, Timeouts, Throttled, Fallbacks, PeakInstances, RunMs, BilledMs, Usd,
            transitions, transitions / 1000.0 * platform.PricePerThousandTransitions + FanOuts / 1e6 * platform.PricePerMillionWorkflows,
            RoundComputeMs.Count == 0 ? 0 : RoundComputeMs.Average());
    }
}
