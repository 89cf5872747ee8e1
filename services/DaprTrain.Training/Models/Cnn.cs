using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DaprTrain.Training.Models;

/// <summary>Two 5x5 convolutions with max pooling, then two linear layers (215,370 parameters).</summary>
public sealed class Cnn : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1 = nn.Conv2d(1, 16, kernel_size: 5, padding: 2);
    private readonly Conv2d conv2 = nn.Conv2d(16, 32, kernel_size: 5, padding: 2);
    private readonly MaxPool2d pool = nn.MaxPool2d(kernel_size: 2);
    private readonly ReLU relu = nn.ReLU();
    private readonly Flatten flatten = nn.Flatten();
    private readonly Linear fc1 = nn.Linear(32 * 7 * 7, 128);
    private readonly Linear fc2 = nn.Linear(128, 10);

    public Cnn() : base(nameof(Cnn)) => RegisterComponents();

    public override Tensor forward(Tensor input)
    {
        using var c1 = conv1.forward(input);
        using var r1 = relu.forward(c1);
        using var p1 = pool.forward(r1);
        using var c2 = conv2.forward(p1);
        using var r2 = relu.forward(c2);
        using var p2 = pool.forward(r2);
        using var flat = flatten.forward(p2);
        using var h = fc1.forward(flat);
        using var rh = relu.forward(h);
        return fc2.forward(rh);
    }
}
