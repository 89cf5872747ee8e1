using static TorchSharp.torch;

namespace DaprTrain.Training.Models;

public static class ModelFactory
{
    /// <summary>
    /// mlp (0.1 M parameters), cnn (0.2 M), resnet (1.7 M, the residual CNN that reaches 90% on Fashion-MNIST), and wider
    /// MLPs for larger gradients: mlp-512 (0.4 M), mlp-2048 (1.6 M).
    /// </summary>
    public static IReadOnlyList<string> Names { get; } = ["mlp", "cnn", "resnet", "mlp-512", "mlp-2048"];

    public static bool IsKnown(string name) => Names.Contains(name, StringComparer.OrdinalIgnoreCase);

    public static nn.Module<Tensor, Tensor> Create(string name) => name.ToLowerInvariant() switch
    {
        "mlp" => new Mlp(),
        "cnn" => new Cnn(),
        "resnet" => new ResNet(),
        "mlp-512" => new Mlp(512),
        "mlp-2048" => new Mlp(2048),
        _ => throw new ArgumentException($"Unknown model '{name}'. Known models: {string.Join(", ", Names)}.", nameof(name)),
    };
}
