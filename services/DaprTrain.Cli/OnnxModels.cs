using DaprTrain.Onnx;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using DaprTrain.Training.Models;
using DaprTrain.Training.Parameters;

namespace DaprTrain.Cli;

/// <summary>A trainer's parameters, by name, as the ONNX exporter takes them.</summary>
internal static class OnnxModels
{
    public static byte[] Export(Trainer trainer)
    {
        var weights = new float[trainer.Parameters.Count];
        trainer.Parameters.ExportWeights(weights);
        var parameters = trainer.Parameters.Layout
            .Select(slice => new NamedParameter(slice.Name, slice.Shape, weights.AsSpan((int)slice.Offset, (int)slice.Length).ToArray()))
            .ToList();
        return OnnxExport.ToBytes(trainer.Options.Model, parameters, Mnist.Mean, Mnist.StandardDeviation);
    }

    /// <summary>
    /// The model <paramref name="model"/> with <paramref name="weights"/> (a distributed run's common weights, or a
    /// checkpoint's): the weights are loaded into the model's own layout first, so a count that does not fit, or a value
    /// that is not finite, is refused here with the reason instead of producing a model that answers nonsense.
    /// </summary>
    public static byte[] Export(string model, ReadOnlySpan<float> weights, string source)
    {
        if (!ModelFactory.IsKnown(model)) throw new InvalidDataException($"{source} is of model '{model}', which this build does not know ({string.Join(", ", ModelFactory.Names)})");
        for (int i = 0; i < weights.Length; i++)
        {
            if (!float.IsFinite(weights[i])) throw new InvalidDataException($"{source} holds a weight that is not a finite number (index {i}): the run it came from diverged");
        }
        using var trainer = new Trainer(new TrainerOptions(model, new OptimizerSettings(OptimizerKind.Sgd, 0.1), 1, 1));
        if (weights.Length != trainer.Parameters.Count)
        {
            throw new InvalidDataException($"{source} holds {weights.Length:N0} weights; model '{model}' has {trainer.Parameters.Count:N0}");
        }
        trainer.Parameters.ImportWeights(weights);
        return Export(trainer);
    }
}

/// <summary>Writes a file whole or not at all: a new file beside it, then a rename over it.</summary>
internal static class AtomicFile
{
    public static async Task WriteAsync(string path, byte[] bytes, CancellationToken cancellationToken)
    {
        string temporary = path + ".tmp";
        await File.WriteAllBytesAsync(temporary, bytes, cancellationToken);
        File.Move(temporary, path, overwrite: true);
    }
}
