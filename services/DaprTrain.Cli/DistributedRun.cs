using DaprTrain.Coordination;
using System.Globalization;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation;
using DaprTrain.Engine.Storage;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

/// <summary>Runs one embedded distributed job with a live progress line and engine events on the console.</summary>
internal static class DistributedRun
{
    public static async Task<RunResult> RunAsync(JobOptions options, TrainingData data, ICheckpointStore store, PriceTable prices, TextWriter output, bool quiet, CancellationToken cancellationToken,
        Simulation.Compute.PlatformProfile? platform = null, Engine.Telemetry.IProgressSink? events = null)
    {
        var progress = new ProgressLine(output);
        var console = new ConsoleEvents(output) { BeforeWrite = progress.Clear };
        using var job = new EmbeddedJob(options, data, store, prices, quiet ? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance : console,
            platform ?? options.Serverless?.Platform, events);
        double? lastAccuracy = null;
        if (!quiet)
        {
            job.Progress = new SynchronousProgress<RoundProgress>(p =>
            {
                lastAccuracy = p.Accuracy ?? lastAccuracy;
                string accuracy = lastAccuracy is double a ? (a * 100).ToString("F1", CultureInfo.InvariantCulture) + "%" : "-";
                progress.Update($"round {p.Round}/{p.Rounds} {ProgressLine.Bar((double)p.Round / p.Rounds)} held-out {accuracy}, " +
                                $"t={p.NowMs / 1000:F1}s, {p.Included}/{p.Members} gradients");
            });
        }
        var result = await job.RunAsync(cancellationToken);
        progress.Clear();
        return result;
    }

    public static void PrintSummary(RunResult r, TextWriter output)
    {
        var o = r.Options;
        output.WriteLine($"summary: {o.Topology.Name()}, {o.Workers} workers, {o.Rounds} rounds, scenario '{r.Scenario}': held-out accuracy {r.FinalAccuracy * 100:F2}%, loss {r.FinalLoss:F4}");
        output.WriteLine($"  time: {r.TotalMs / 1000:F2} s (virtual: measured compute + network model), {r.WallMs / 1000:F2} s wall; " +
                         $"time to {o.TargetAccuracy * 100:F0}%: {(r.TimeToTargetMs is double t ? $"{t / 1000:F2} s" : "not reached")}");
        output.WriteLine($"  bytes per worker per round: {r.BytesPerWorkerPerRound(sent: true) / 1e6:F3} MB sent, {r.BytesPerWorkerPerRound(sent: false) / 1e6:F3} MB received " +
                         $"(model: {r.ParameterCount * 4 / 1e6:F3} MB; compression {o.Codec})");
        output.WriteLine($"  gradients left out: {r.GradientsDropped}; late messages discarded: {r.LateMessages}; duplicates ignored: {r.DuplicatesIgnored}; " +
                         $"rejected: {(r.Rejected.Count == 0 ? "none" : string.Join(", ", r.Rejected.Select(p => $"{p.Key} {p.Value}")))}; rounds lost: {r.RoundsLost}");
        foreach (var fault in r.Faults)
        {
            output.WriteLine($"  fault {fault.Fault} at {fault.AtMs / 1000:F2} s: " +
                             (fault.DetectionMs is double d ? $"detected after {d:F0} ms, " : "") +
                             (fault.RecoveryMs is double rec ? $"next round completed after {rec:F0} ms" : "no round completed after it"));
        }
        if (r.Functions is { } f)
        {
            output.WriteLine($"  serverless compute (modelled on '{f.Platform}', {f.Date}; compute measured): {f.FunctionsPerWorker} functions per worker per round, " +
                             $"{f.MemoryMb} MB ({f.Vcpus:F2} vCPU, measured compute x{f.CpuFactor:F2}); mean per-round gradient time {f.MeanRoundComputeMs:F1} ms");
            output.WriteLine($"  invocations {f.Invocations:N0}: cold starts {f.ColdStarts:N0}, warm {f.WarmStarts:N0}, retries {f.Retries:N0} ({f.Crashes} crashed, {f.Timeouts} timed out), " +
                             $"throttled {f.Throttled:N0}, computed by the worker after repeated failures {f.Fallbacks:N0}; peak instances {f.PeakInstances}");
        }
        var b = r.Billing;
        output.WriteLine($"  cost (modelled; prices {r.Prices.Date}): instances {(r.Functions is null ? "" : "+ gradient functions ")}${b.InstancesUsd:F6} " +
                         $"(VMs ${b.VmUsd:F6}{(r.Functions is null ? "" : $", functions ${b.FunctionsUsd:F6}, orchestration ${b.OrchestrationUsd:F6}")}, channel ${b.ChannelUsd:F6}); " +
                         $"all in functions ${b.AllFunctionsUsd:F6} (node steps ${b.NodeStepsUsd:F6}, barrier waits billed)");
        output.WriteLine($"  cost: serverless ${r.Cost.ServerlessUsd:F6} ({r.Cost.BusyGbSeconds:F2} GB-s busy, {r.Cost.Requests:N0} requests) vs " +
                         $"{r.Cost.Instances} always-on VMs ${r.Cost.VmUsd:F6} ({r.Prices.VmInstanceType}); prices: {r.Prices.Region}, {r.Prices.Date}");
    }

    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
