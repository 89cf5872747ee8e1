using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace DaprTrain.Onnx;

/// <summary>Serves an exported model with ONNX Runtime: raw MNIST pixels in, logits and classes out.</summary>
public sealed class OnnxClassifier : IDisposable
{
    private const int PixelsPerImage = 28 * 28;
    private readonly InferenceSession _session;

    public OnnxClassifier(byte[] model)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        try
        {
            _session = new InferenceSession(model, options);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new InvalidDataException($"not a loadable ONNX model: {ex.Message}", ex);
        }
        if (!_session.InputMetadata.ContainsKey(OnnxExport.InputName) || !_session.OutputMetadata.ContainsKey(OnnxExport.OutputName))
        {
            throw new InvalidDataException($"the model's input and output are not '{OnnxExport.InputName}' and '{OnnxExport.OutputName}': it was not exported by DaprTrain.");
        }
    }

    public static OnnxClassifier Load(string path) => File.Exists(path)
        ? new OnnxClassifier(File.ReadAllBytes(path))
        : throw new FileNotFoundException($"model file '{path}' does not exist.", path);

    /// <summary>Logits [count, 10] for <paramref name="pixels"/>: count images of 28x28 values in 0..255, row-major.</summary>
    public float[] Logits(ReadOnlySpan<float> pixels)
    {
        if (pixels.IsEmpty || pixels.Length % PixelsPerImage != 0) throw new ArgumentException($"{pixels.Length} pixel values are not a whole number of 28x28 images.", nameof(pixels));
        int count = pixels.Length / PixelsPerImage;
        var input = new DenseTensor<float>(pixels.ToArray(), [count, 1, 28, 28]);
        using var results = _session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.InputName, input)]);
        return results.Single(r => r.Name == OnnxExport.OutputName).AsEnumerable<float>().ToArray();
    }

    /// <summary>The most likely class of each image.</summary>
    public int[] Classify(ReadOnlySpan<float> pixels)
    {
        var logits = Logits(pixels);
        var classes = new int[logits.Length / 10];
        for (int i = 0; i < classes.Length; i++)
        {
            var row = logits.AsSpan(i * 10, 10);
            int best = 0;
            for (int k = 1; k < 10; k++) if (row[k] > row[best]) best = k;
            classes[i] = best;
        }
        return classes;
    }

    public void Dispose() => _session.Dispose();
}
