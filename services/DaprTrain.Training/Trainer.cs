using DaprTrain.Training.Data;
using DaprTrain.Training.Models;
using DaprTrain.Training.Parameters;
using TorchSharp;
using static TorchSharp.torch;

namespace DaprTrain.Training;

public sealed record TrainerOptions(string Model, OptimizerSettings Optimizer, int BatchSize, ulong Seed)
{
    public void Validate()
    {
        if (!ModelFactory.IsKnown(Model)) throw new ArgumentException($"unknown model '{Model}' (known: {string.Join(", ", ModelFactory.Names)}).");
        if (BatchSize <= 0) throw new ArgumentException($"batch size must be positive (got {BatchSize}).");
        Optimizer.Validate();
    }
}

public readonly record struct EvaluationResult(double Loss, double Accuracy, int Samples);

/// <summary>
/// One model replica with its flat parameters and optimizer. Distributed code drives it in two halves,
/// <see cref="ComputeGradient"/> and <see cref="ApplyGradient"/>, with the exchange in between.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private long[] _batchBuffer = [];

    public Trainer(TrainerOptions options)
    {
        options.Validate();
        TorchRuntime.EnsureInitialised();
        Options = options;
        _model = ModelFactory.Create(options.Model);
        Parameters = new FlatParameters(_model, options.Seed);
        Optimizer = new FlatOptimizer(Parameters, options.Optimizer);
    }

    public TrainerOptions Options { get; }

    public FlatParameters Parameters { get; }

    public FlatOptimizer Optimizer { get; }

    public nn.Module<Tensor, Tensor> Model => _model;

    /// <summary>Forward and backward on one batch; the flat gradient then holds the batch-mean gradient.</summary>
    public float ComputeGradient(LabeledDataset data, ReadOnlySpan<long> batch)
    {
        if (batch.IsEmpty) throw new ArgumentException("empty batch", nameof(batch));
        using var scope = NewDisposeScope();
        _model.train();
        Parameters.ZeroGradients();
        var (input, target) = Gather(data, batch);
        var logits = _model.forward(input);
        var loss = nn.functional.cross_entropy(logits, target);
        loss.backward();
        return loss.item<float>();
    }

    public void ApplyGradient() => Optimizer.Step(Parameters.Gradients);

    /// <summary>Steps on a sparse aggregate: coordinates with a zero gradient stay as they are (see <see cref="FlatOptimizer.Step(TorchSharp.torch.Tensor, bool)"/>).</summary>
    public void ApplySparseGradient() => Optimizer.Step(Parameters.Gradients, sparse: true);

    public float TrainStep(LabeledDataset data, ReadOnlySpan<long> batch)
    {
        float loss = ComputeGradient(data, batch);
        ApplyGradient();
        return loss;
    }

    public EvaluationResult Evaluate(LabeledDataset data, IReadOnlyList<long> indices, int batchSize = 1000)
    {
        _model.eval();
        double lossSum = 0;
        long correct = 0;
        var buffer = new long[batchSize];
        using var noGrad = no_grad();
        for (int start = 0; start < indices.Count; start += batchSize)
        {
            int count = Math.Min(batchSize, indices.Count - start);
            for (int i = 0; i < count; i++) buffer[i] = indices[start + i];
            using var scope = NewDisposeScope();
            var (input, target) = Gather(data, buffer.AsSpan(0, count));
            var logits = _model.forward(input);
            lossSum += nn.functional.cross_entropy(logits, target, reduction: nn.Reduction.Sum).item<float>();
            correct += logits.argmax(1).eq(target).sum().item<long>();
        }
        return new EvaluationResult(lossSum / indices.Count, (double)correct / indices.Count, indices.Count);
    }

    private (Tensor Input, Tensor Target) Gather(LabeledDataset data, ReadOnlySpan<long> batch)
    {
        if (_batchBuffer.Length != batch.Length) _batchBuffer = new long[batch.Length];
        batch.CopyTo(_batchBuffer);
        var index = tensor(_batchBuffer);
        return (data.FeatureTensor.index_select(0, index), data.LabelTensor.index_select(0, index));
    }

    public TrainingCheckpoint CaptureCheckpoint(long step, EpochSampler? sampler)
    {
        var weights = new float[Parameters.Count];
        Parameters.ExportWeights(weights);
        var buffers = Optimizer.StateBuffers.Select(b => FlatOptimizer.Span(b).ToArray()).ToArray();
        return new TrainingCheckpoint(Options.Model, Options.Optimizer, step, Optimizer.StepCount,
            sampler?.Seed ?? Options.Seed, sampler?.Epoch ?? 0, sampler?.Position ?? 0, weights, buffers);
    }

    /// <summary>Validates everything first, so a checkpoint that does not fit leaves this replica untouched.</summary>
    public void RestoreCheckpoint(TrainingCheckpoint checkpoint, EpochSampler? sampler)
    {
        if (!string.Equals(checkpoint.Model, Options.Model, StringComparison.OrdinalIgnoreCase))
        {
            throw new CheckpointFormatException($"checkpoint is for model '{checkpoint.Model}', this trainer runs '{Options.Model}'.");
        }
        if (checkpoint.Weights.Length != Parameters.Count)
        {
            throw new CheckpointFormatException($"checkpoint has {checkpoint.Weights.Length} weights, model '{Options.Model}' has {Parameters.Count}.");
        }
        if (checkpoint.Optimizer.Kind != Options.Optimizer.Kind || checkpoint.OptimizerBuffers.Length != Optimizer.StateBuffers.Count)
        {
            throw new CheckpointFormatException($"checkpoint optimizer {checkpoint.Optimizer.Kind} does not match this trainer's {Options.Optimizer.Kind}.");
        }
        if (sampler is not null && (checkpoint.Position < 0 || checkpoint.Position >= sampler.SampleCount))
        {
            throw new CheckpointFormatException($"checkpoint data cursor {checkpoint.Position} is outside this worker's {sampler.SampleCount} samples.");
        }
        Optimizer.RestoreState(checkpoint.OptimizerStep, checkpoint.OptimizerBuffers);
        Parameters.ImportWeights(checkpoint.Weights);
        sampler?.Restore(checkpoint.Epoch, checkpoint.Position);
    }

    public void Dispose()
    {
        Optimizer.Dispose();
        Parameters.Dispose();
        _model.Dispose();
    }
}
