using static TorchSharp.torch;

namespace DaprTrain.Training.Models;

public static class ModelFactory
{
    public static IReadOnlyList<string> Names { get; } = ["mlp", "cnn"];

    public static bool IsKnown(string name) => Names.Contains(name, StringComparer.OrdinalIgnoreCase);

    public static nn.Module<Tensor, Tensor> Create(string name) => name.ToLowerInvariant() switch
    {
        "mlp" => new Mlp(),
        "cnn" => new Cnn(),
        _ => throw new ArgumentException($"Unknown model '{name}'. Known models: {string.Join(", ", Names)}.", nameof(name)),
    };
}
