using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DaprTrain.Training.Models;

/// <summary>784-128-10 multilayer perceptron (101,770 parameters).</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Flatten flatten = nn.Flatten();
    private readonly Linear fc1 = nn.Linear(28 * 28, 128);
    private readonly ReLU relu = nn.ReLU();
    private readonly Linear fc2 = nn.Linear(128, 10);

    public Mlp() : base(nameof(Mlp)) => RegisterComponents();

    public override Tensor forward(Tensor input)
    {
        using var flat = flatten.forward(input);
        using var hidden = fc1.forward(flat);
        using var activated = relu.forward(hidden);
        return fc2.forward(activated);
    }
}
