using System.Diagnostics;
using DaprTrain.Coordination;
using DaprTrain.Engine.Nodes;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Simulation.Compute;

/// <summary>
/// Where a worker's gradient is computed, and how long that takes in virtual time: on the worker's own instance
/// (<see cref="VmCompute"/>) or fanned out to serverless functions (<see cref="ServerlessCompute"/>).
/// </summary>
internal abstract class GradientCompute : IDisposable
{
    public static GradientCompute For(JobOptions options, ILoggerFactory loggers) => options.Compute switch
    {
        ComputeMode.Serverless => new ServerlessCompute(options, loggers.CreateLogger<ServerlessCompute>()),
        _ => new VmCompute(),
    };

    /// <summary>Computes the worker's gradient for its open round; returns the virtual milliseconds until it is ready.</summary>
    public abstract double Run(WorkerNode worker, double startMs);

    /// <summary>Of a compute step of <paramref name="computeMs"/>, the time the worker itself was busy.</summary>
    public virtual double WorkerBusyMs(double computeMs) => computeMs;

    /// <summary>A worker stopped: whatever the mode keeps for it goes.</summary>
    public virtual void Forget(string worker)
    {
    }

    /// <summary>What the mode reports at the end of a run (null for VMs).</summary>
    public virtual FunctionReport? Report() => null;

    public virtual void Dispose()
    {
    }
}

/// <summary>The worker computes on its own instance: the measured forward and backward pass is the compute time.</summary>
internal sealed class VmCompute : GradientCompute
{
    public override double Run(WorkerNode worker, double startMs)
    {
        long started = Stopwatch.GetTimestamp();
        worker.ComputeGradient();
        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }
}
