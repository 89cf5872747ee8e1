using System.Security.Cryptography;
using DaprTrain.Onnx;
using Microsoft.Extensions.Options;

namespace DaprTrain.Serving;

/// <summary>
/// What GET /v1/model answers: which file is served (its name only: where it lies on the server is no client's
/// business), its digest, and the tensors it takes and gives.
/// </summary>
public sealed record ModelInfo(string File, long Bytes, string Sha256, string Input, string Output, int MaxImagesPerRequest);

/// <summary>A class with the probability the model gives each of the ten digits.</summary>
public sealed record Prediction(int Label, float[] Probabilities);

/// <summary>
/// The served model, loaded once at start: a file that is missing or no DaprTrain ONNX export stops the service
/// with the reason, rather than answering every request with an error. ONNX Runtime sessions are thread-safe.
/// </summary>
public sealed class ModelHost : IDisposable
{
    private readonly OnnxClassifier _classifier;

    public ModelHost(IOptions<ServingOptions> options, ILogger<ModelHost> logger)
    {
        var settings = options.Value;
        byte[] model = System.IO.File.ReadAllBytes(settings.ModelPath);
        try
        {
            _classifier = new OnnxClassifier(model);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"Serving:ModelPath '{settings.ModelPath}': {ex.Message}", ex);
        }
        Info = new ModelInfo(System.IO.Path.GetFileName(settings.ModelPath), model.Length, Convert.ToHexStringLower(SHA256.HashData(model)),
            $"{OnnxExport.InputName}: float32 [N, 1, 28, 28], raw pixels 0..255", $"{OnnxExport.OutputName}: float32 [N, 10]", settings.MaxImagesPerRequest);
        logger.LogInformation("serving {Path} ({Bytes} bytes, sha256 {Digest})", System.IO.Path.GetFullPath(settings.ModelPath), Info.Bytes, Info.Sha256);
    }

    public ModelInfo Info { get; }

    /// <summary>One prediction per 28x28 image in <paramref name="pixels"/> (row-major, 0..255).</summary>
    public IReadOnlyList<Prediction> Predict(float[] pixels)
    {
        float[] logits = _classifier.Logits(pixels);
        var predictions = new Prediction[logits.Length / 10];
        for (int i = 0; i < predictions.Length; i++) predictions[i] = FromLogits(logits.AsSpan(i * 10, 10));
        return predictions;
    }

    private static Prediction FromLogits(ReadOnlySpan<float> logits)
    {
        // Softmax with the maximum subtracted first, so that no exponent overflows.
        float max = float.NegativeInfinity;
        int label = 0;
        for (int k = 0; k < logits.Length; k++)
        {
            if (logits[k] > max)
            {
                max = logits[k];
                label = k;
            }
        }
        var probabilities = new float[logits.Length];
        float sum = 0;
        for (int k = 0; k < logits.Length; k++) sum += probabilities[k] = MathF.Exp(logits[k] - max);
        for (int k = 0; k < logits.Length; k++) probabilities[k] /= sum;
        return new Prediction(label, probabilities);
    }

    public void Dispose() => _classifier.Dispose();
}
