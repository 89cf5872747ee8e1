using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DaprTrain.Training.Models;

/// <summary>784-H-10 multilayer perceptron: H = 128 (101,770 parameters) by default; wider ones for larger gradients.</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Flatten flatten = nn.Flatten();
    private readonly Linear fc1;
    private readonly ReLU relu = nn.ReLU();
    private readonly Linear fc2;

    public Mlp(int hidden = 128) : base(nameof(Mlp))
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hidden);
        fc1 = nn.Linear(28 * 28, hidden);
        fc2 = nn.Linear(hidden, 10);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var flat = flatten.forward(input);
        using var hidden = fc1.forward(flat);
        using var activated = relu.forward(hidden);
        return fc2.forward(activated);
    }
}
