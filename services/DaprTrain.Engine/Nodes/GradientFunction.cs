using DaprTrain.Training;
using DaprTrain.Training.Data;

namespace DaprTrain.Engine.Nodes;

/// <summary>
/// A serverless gradient function's instance: stateless between invocations but for the loaded model code. An
/// invocation takes the round's weights and a share of a worker's batch and answers with that share's mean gradient
/// (arXiv 2309.14139: one function per mini-batch). What the instance holds is only its warm runtime, so any
/// instance gives the same gradient for the same weights and samples.
/// </summary>
public sealed class GradientFunction(TrainerOptions options) : IDisposable
{
    private readonly Trainer _trainer = new(options);

    public int ParameterCount => _trainer.Parameters.Count;

    /// <summary>Loads <paramref name="weights"/>, runs forward and backward on the samples, and returns the gradient.</summary>
    public float[] Invoke(ReadOnlySpan<float> weights, LabeledDataset data, ReadOnlySpan<long> samples)
    {
        if (weights.Length != ParameterCount) throw new ArgumentException($"weights of {weights.Length} values; the model has {ParameterCount}", nameof(weights));
        _trainer.Parameters.ImportWeights(weights);
        _trainer.ComputeGradient(data, samples);
        var gradient = new float[ParameterCount];
        _trainer.Parameters.ExportGradients(gradient);
        return gradient;
    }

    public void Dispose() => _trainer.Dispose();
}
