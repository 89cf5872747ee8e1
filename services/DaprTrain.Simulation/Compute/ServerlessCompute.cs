using System.Diagnostics;
using DaprTrain.Engine.Nodes;
using DaprTrain.Engine.Telemetry;
using DaprTrain.Simulation.Faults;
using DaprTrain.Training;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace DaprTrain.Simulation.Compute;

/// <summary>
/// --compute serverless (arXiv 2309.14139): a worker's step fans out into K gradient-function invocations, one per share of
/// its batch, on the round's weights; the worker combines their gradients by sample count in share order. Every
/// invocation's forward and backward pass really runs (on a function instance of its own) and is measured; the platform
/// around it is modelled from a <see cref="PlatformProfile"/>: cold starts when no warm instance is free, warm instances
/// kept for the idle time, an account-wide concurrency limit (throttled invocations wait), the weights and the gradient
/// over the function's bandwidth, CPU proportional to memory, the timeout, billing rounded as the platform does.
/// Crashed and timed-out invocations are retried (their gradient counts once); after MaxAttempts failures the worker
/// computes that share itself. Faults are drawn per (worker, round, share, attempt) from the seed: a run replays exactly.
/// </summary>
internal sealed class ServerlessCompute : GradientCompute
{
    private readonly JobOptions _options;
    private readonly ServerlessOptions _serverless;
    private readonly PlatformProfile _platform;
    private readonly FunctionFaults _faults;
    private readonly ILogger _log;
    private readonly List<FunctionInstance> _instances = [];
    private readonly List<double> _slotsBusyUntil = [];
    // Any instance gives the same gradient for the same weights and samples, so one real runtime serves every modelled instance.
    private GradientFunction? _runtime;
    private readonly FunctionLedger _ledger = new();
    private readonly double _cpuFactor;
    private double _lastCombineMs;

    public ServerlessCompute(JobOptions options, ILogger log)
    {
        _options = options;
        _serverless = options.Serverless!;
        _platform = _serverless.Platform;
        _faults = options.Faults.Functions;
        _log = log;
        // The compute inside a function is measured here on this process's torch threads; a function with fewer vCPUs is
        // slower in proportion (CPU proportional to memory). More vCPUs than measured are not assumed to help.
        _cpuFactor = Math.Max(1.0, torch.get_num_threads() / _platform.Vcpus);
    }

    private double ColdStartMs => _faults.ColdStartMs ?? _platform.ColdStartMs;

    public override double Run(WorkerNode worker, double startMs)
    {
        var shares = worker.DrawBatchShares(_serverless.Functions);
        var weights = worker.Trainer.Parameters.WeightSpan;
        long modelBytes = (long)worker.ParameterCount * sizeof(float);
        double transferMs = 2 * (modelBytes * 8.0 / (_platform.BandwidthMbps * 1e6) * 1000.0);
        var gradients = new (int Samples, ReadOnlyMemory<float> Gradient)[shares.Count];
        double ready = startMs;
        _ledger.FanOuts++;
        for (int k = 0; k < shares.Count; k++)
        {
            var runtime = _runtime ??= new GradientFunction(_options.Trainer);
            long started = Stopwatch.GetTimestamp();
            gradients[k] = (shares[k].Length, runtime.Invoke(weights, worker.TrainData, shares[k]));
            double computeMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            double workMs = _platform.InvokeOverheadMs + transferMs + computeMs * _cpuFactor;
            double done = Invoke(worker.Id, worker.OpenRound, k, startMs, workMs, computeMs);
            ready = Math.Max(ready, done);
        }
        long combineStarted = Stopwatch.GetTimestamp();
        worker.CombineShareGradients(gradients);
        _lastCombineMs = Stopwatch.GetElapsedTime(combineStarted).TotalMilliseconds;
        double stepMs = ready - startMs + _lastCombineMs;
        _ledger.RoundComputeMs.Add(stepMs);
        return stepMs;
    }

    /// <summary>The worker itself only combines the functions' gradients.</summary>
    public override double WorkerBusyMs(double computeMs) => _lastCombineMs;

    /// <summary>One share's invocation with its retries on the platform's timeline; returns when its gradient is back.</summary>
    private double Invoke(string worker, long round, int share, double requestedMs, double workMs, double measuredComputeMs)
    {
        var random = SplitMix64.Derive(_options.Trainer.Seed, $"function:{worker}:{round}:{share}");
        double at = requestedMs;
        for (int attempt = 1; attempt <= _serverless.MaxAttempts; attempt++)
        {
            bool crash = _faults.CrashProbability > 0 && random.NextSingle() < _faults.CrashProbability;
            bool hang = !crash && _faults.TimeoutProbability > 0 && random.NextSingle() < _faults.TimeoutProbability;
            float crashPoint = random.NextSingle();
            double slotAt = AcquireSlot(at);
            var (instance, coldMs) = AcquireInstance(slotAt);
            double runMs = crash ? coldMs + workMs * crashPoint : hang ? coldMs + _platform.TimeoutMs : coldMs + workMs;
            bool timedOut = !crash && (hang || runMs - coldMs > _platform.TimeoutMs);
            if (timedOut) runMs = coldMs + _platform.TimeoutMs;
            double end = slotAt + runMs;
            Bill(runMs, coldMs);
            ReleaseSlot(end);
            if (!crash && !timedOut)
            {
                instance.BusyUntil = instance.LastUsedEnd = end;
                Count("success");
                return end;
            }
            // A crashed or timed-out instance is gone; the orchestrator retries at once on another.
            _instances.Remove(instance);
            if (crash) _ledger.Crashes++;
            else _ledger.Timeouts++;
            Count(crash ? "crash" : "timeout");
            at = end;
        }
        _ledger.Fallbacks++;
        _log.LogWarning("{Worker}: share {Share} of round {Round} failed {Attempts} times on the platform; the worker computes it itself",
            worker, share, round, _serverless.MaxAttempts);
        return at + measuredComputeMs;
    }

    private double AcquireSlot(double at)
    {
        _slotsBusyUntil.RemoveAll(until => until <= at);
        if (_slotsBusyUntil.Count < _platform.ConcurrencyLimit) return at;
        _ledger.Throttled++;
        double free = _slotsBusyUntil.Min();
        _slotsBusyUntil.Remove(free);
        return free;
    }

    private void ReleaseSlot(double end) => _slotsBusyUntil.Add(end);

    /// <summary>A warm instance (free, and idle no longer than the platform keeps one), else a new one with a cold start.</summary>
    private (FunctionInstance Instance, double ColdMs) AcquireInstance(double at)
    {
        _instances.RemoveAll(i => i.BusyUntil <= at && at - i.LastUsedEnd > _platform.IdleTimeoutMs);
        var warm = _instances.Where(i => i.BusyUntil <= at).OrderByDescending(i => i.LastUsedEnd).ThenBy(i => i.Number).FirstOrDefault();
        if (warm is not null)
        {
            _ledger.WarmStarts++;
            warm.BusyUntil = double.MaxValue;
            return (warm, 0);
        }
        var cold = new FunctionInstance(++_ledger.InstancesStarted) { BusyUntil = double.MaxValue };
        _instances.Add(cold);
        _ledger.ColdStarts++;
        _ledger.PeakInstances = Math.Max(_ledger.PeakInstances, _instances.Count);
        return (cold, ColdStartMs);
    }

    private void Bill(double runMs, double coldMs)
    {
        double billed = _platform.BilledMs(_platform.BillsColdStart ? runMs : runMs - coldMs);
        _ledger.Invocations++;
        _ledger.RunMs += runMs;
        _ledger.BilledMs += billed;
        _ledger.Usd += _platform.InvocationUsd(billed);
        _ledger.Transitions += _platform.TransitionsPerInvocation;
    }

    private static void Count(string outcome) => TrainingMetrics.Invocations.Add(1, new KeyValuePair<string, object?>("daprtrain.outcome", outcome));

    public override FunctionReport Report() => _ledger.ToReport(_platform, _serverless.Functions, _cpuFactor);

    public override void Dispose()
    {
        _runtime?.Dispose();
    }

    private sealed class FunctionInstance(int number)
    {
        public int Number { get; } = number;

        public double BusyUntil { get; set; }

        public double LastUsedEnd { get; set; }
    }
}
