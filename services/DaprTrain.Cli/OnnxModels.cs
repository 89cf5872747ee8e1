using DaprTrain.Onnx;
using DaprTrain.Training;
using DaprTrain.Training.Data;

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
