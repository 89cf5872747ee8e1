using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace DaprTrain.Training.Parameters;

public enum OptimizerKind
{
    Sgd,
    Adam,
}

public sealed record OptimizerSettings(OptimizerKind Kind, double LearningRate, double Momentum = 0.0,
    double Beta1 = 0.9, double Beta2 = 0.999, double Epsilon = 1e-8)
{
    public void Validate()
    {
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentException($"learning rate must be a positive number (got {LearningRate}).");
        if (Momentum < 0 || Momentum >= 1) throw new ArgumentException($"momentum must be in [0, 1) (got {Momentum}).");
        if (Beta1 < 0 || Beta1 >= 1 || Beta2 < 0 || Beta2 >= 1) throw new ArgumentException("Adam betas must be in [0, 1).");
        if (!(Epsilon > 0)) throw new ArgumentException("Adam epsilon must be positive.");
    }
}

/// <summary>
/// SGD (with momentum) and Adam over the flat parameter and gradient tensors: one fused update for the
/// whole model instead of one per parameter, and optimizer state that is three flat buffers, easy to
/// checkpoint and to ship. The Adam update is PyTorch's (bias-corrected, eps outside the sqrt).
/// </summary>
public sealed class FlatOptimizer : IDisposable
{
    private readonly Tensor _weights;
    private readonly Tensor? _firstMoment;
    private readonly Tensor? _secondMoment;

    public FlatOptimizer(FlatParameters parameters, OptimizerSettings settings)
    {
        settings.Validate();
        Settings = settings;
        _weights = parameters.Weights;
        if (settings.Kind == OptimizerKind.Adam || settings.Momentum > 0) _firstMoment = zeros(parameters.Count, ScalarType.Float32).DetachFromDisposeScope();
        if (settings.Kind == OptimizerKind.Adam) _secondMoment = zeros(parameters.Count, ScalarType.Float32).DetachFromDisposeScope();
    }

    public OptimizerSettings Settings { get; }

    public long StepCount { get; private set; }

    /// <summary>The state buffers in a fixed order (empty for plain SGD).</summary>
    public IReadOnlyList<Tensor> StateBuffers => new[] { _firstMoment, _secondMoment }.OfType<Tensor>().ToList();

    public void Step(Tensor gradient) => Step(gradient, sparse: false);

    /// <summary>
    /// One step. With <paramref name="sparse"/>, coordinates whose gradient is exactly zero are left alone: their weight,
    /// momentum and second moment do not move (PyTorch's SparseAdam, TensorFlow's LazyAdam). For sparse aggregates (top-k),
    /// where a zero means "not sent this round", not "no slope".
    /// </summary>
    public void Step(Tensor gradient, bool sparse)
    {
        if (sparse)
        {
            SparseStep(gradient);
            return;
        }
        // Every scalar is an explicit, disposed-at-the-end local: an implicit double-to-Scalar conversion is
        // unreachable once its handle is read, and a collection on another thread could finalize it while
        // libtorch still reads it (seen in CI as "Unknown scalar type"; OptimizerTests reproduces it). That includes
        // the alpha of add_, which TorchSharp creates itself when it is left out: it is always passed.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        StepCount++;
        var s = Settings;
        using var one = 1.0.ToScalar();
        using var descent = (-s.LearningRate).ToScalar();
        if (s.Kind == OptimizerKind.Sgd)
        {
            if (_firstMoment is null)
            {
                _weights.add_(gradient, alpha: descent);
            }
            else
            {
                using var momentum = s.Momentum.ToScalar();
                _firstMoment.mul_(momentum).add_(gradient, alpha: one);
                _weights.add_(_firstMoment, alpha: descent);
            }
            return;
        }

        using var beta1 = s.Beta1.ToScalar();
        using var oneMinusBeta1 = (1 - s.Beta1).ToScalar();
        using var beta2 = s.Beta2.ToScalar();
        using var oneMinusBeta2 = (1 - s.Beta2).ToScalar();
        using var epsilon = s.Epsilon.ToScalar();
        using var sqrtBiasCorrection2 = Math.Sqrt(1 - Math.Pow(s.Beta2, StepCount)).ToScalar();
        using var stepSize = (-s.LearningRate / (1 - Math.Pow(s.Beta1, StepCount))).ToScalar();
        _firstMoment!.mul_(beta1).add_(gradient, alpha: oneMinusBeta1);
        _secondMoment!.mul_(beta2).addcmul_(gradient, gradient, value: oneMinusBeta2);
        var denominator = _secondMoment.sqrt().div_(sqrtBiasCorrection2).add_(epsilon, alpha: one);
        _weights.addcdiv_(_firstMoment, denominator, value: stepSize);
    }

    private void SparseStep(Tensor gradient)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        StepCount++;
        var s = Settings;
        using var one = 1.0.ToScalar();
        using var zero = 0.0.ToScalar();
        using var descent = (-s.LearningRate).ToScalar();
        var sent = gradient.ne(zero);
        if (s.Kind == OptimizerKind.Sgd)
        {
            if (_firstMoment is null)
            {
                _weights.add_(gradient, alpha: descent);
                return;
            }
            using var momentum = s.Momentum.ToScalar();
            _firstMoment.copy_(where(sent, _firstMoment.mul(momentum).add_(gradient, alpha: one), _firstMoment));
            _weights.add_(_firstMoment.mul(sent), alpha: descent);
            return;
        }
        using var beta1 = s.Beta1.ToScalar();
        using var oneMinusBeta1 = (1 - s.Beta1).ToScalar();
        using var beta2 = s.Beta2.ToScalar();
        using var oneMinusBeta2 = (1 - s.Beta2).ToScalar();
        using var epsilon = s.Epsilon.ToScalar();
        using var sqrtBiasCorrection2 = Math.Sqrt(1 - Math.Pow(s.Beta2, StepCount)).ToScalar();
        using var stepSize = (-s.LearningRate / (1 - Math.Pow(s.Beta1, StepCount))).ToScalar();
        _firstMoment!.copy_(where(sent, _firstMoment.mul(beta1).add_(gradient, alpha: oneMinusBeta1), _firstMoment));
        _secondMoment!.copy_(where(sent, _secondMoment.mul(beta2).addcmul_(gradient, gradient, value: oneMinusBeta2), _secondMoment));
        var denominator = _secondMoment.sqrt().div_(sqrtBiasCorrection2).add_(epsilon, alpha: one);
        _weights.addcdiv_(_firstMoment.mul(sent), denominator, value: stepSize);
    }

    public void RestoreState(long stepCount, IReadOnlyList<float[]> buffers)
    {
        var targets = StateBuffers;
        if (buffers.Count != targets.Count) throw new ArgumentException($"Optimizer state has {buffers.Count} buffers; {Settings.Kind} needs {targets.Count}.");
        for (int i = 0; i < targets.Count; i++)
        {
            if (buffers[i].Length != targets[i].numel()) throw new ArgumentException($"Optimizer buffer {i} has {buffers[i].Length} values; expected {targets[i].numel()}.");
        }
        for (int i = 0; i < targets.Count; i++) buffers[i].AsSpan().CopyTo(Span(targets[i]));
        StepCount = stepCount;
    }

    /// <summary>The storage of a contiguous CPU float32 tensor, without a copy.</summary>
    internal static Span<float> Span(Tensor flat) => MemoryMarshal.Cast<byte, float>(flat.bytes);

    public void Dispose()
    {
        _firstMoment?.Dispose();
        _secondMoment?.Dispose();
    }
}
