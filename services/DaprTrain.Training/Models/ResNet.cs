using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DaprTrain.Training.Models;

/// <summary>
/// Two 3x3 convolutions (padding 1, channels kept) with an identity shortcut: relu(x + conv2(relu(conv1(x)))).
/// </summary>
/// <remarks>
/// No normalisation layer, on purpose. BatchNorm keeps running means and variances as buffers, not parameters:
/// they are not in the flat parameter vector that the exchange averages, so every replica would accumulate its
/// own from its own shard and replicas that hold bit-identical weights would still predict differently in eval
/// mode (and the ONNX export would have to pick one replica's statistics). GroupNorm or LayerNorm have no buffers,
/// but their scale must start at 1, and <see cref="Parameters.FlatParameters"/> initialises every parameter the
/// same way (PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in))), which would start the scale near 0. With that small
/// default initialisation a residual branch starts small against its shortcut, so a network this shallow
/// (six convolutions) trains stably without normalisation.
/// </remarks>
public sealed class ResidualBlock : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly Conv2d conv2;
    private readonly ReLU relu = nn.ReLU();

    public ResidualBlock(string name, int channels) : base(name)
    {
        conv1 = nn.Conv2d(channels, channels, kernel_size: 3, padding: 1);
        conv2 = nn.Conv2d(channels, channels, kernel_size: 3, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var c1 = conv1.forward(input);
        using var r1 = relu.forward(c1);
        using var c2 = conv2.forward(r1);
        using var sum = c2.add(input);
        return relu.forward(sum);
    }
}

/// <summary>
/// A small residual CNN for 28x28 images (1,722,442 parameters, 6.9 MB of float32 gradient): a 3x3 stem (32 channels,
/// 28x28), max pool, a residual block at 14x14, max pool, a 3x3 convolution to 64 channels, a residual block at 7x7,
/// then a 512-unit hidden layer and the 10 logits.
/// </summary>
/// <remarks>
/// The convolutions are few and narrow (about 10 M multiply-adds per image; measured here, about 3 ms of CPU time per
/// image trained, so an epoch of Fashion-MNIST's 60,000 images is a few minutes on 2 cores: BENCHMARKS.md), while the
/// 3136x512 hidden layer holds most of the parameters: the gradient is large enough (14 chunks of 512 KiB) to load the
/// exchange and the chunking, for little compute per byte.
/// See <see cref="ResidualBlock"/> for why there is no normalisation layer.
/// </remarks>
public sealed class ResNet : nn.Module<Tensor, Tensor>
{
    public const int StemChannels = 32;
    public const int WideChannels = 64;
    public const int Hidden = 512;

    private readonly Conv2d stem = nn.Conv2d(1, StemChannels, kernel_size: 3, padding: 1);
    private readonly ResidualBlock block1 = new(nameof(block1), StemChannels);
    private readonly Conv2d widen = nn.Conv2d(StemChannels, WideChannels, kernel_size: 3, padding: 1);
    private readonly ResidualBlock block2 = new(nameof(block2), WideChannels);
    private readonly MaxPool2d pool = nn.MaxPool2d(kernel_size: 2);
    private readonly ReLU relu = nn.ReLU();
    private readonly Flatten flatten = nn.Flatten();
    private readonly Linear fc1 = nn.Linear(WideChannels * 7 * 7, Hidden);
    private readonly Linear fc2 = nn.Linear(Hidden, 10);

    public ResNet() : base(nameof(ResNet)) => RegisterComponents();

    public override Tensor forward(Tensor input)
    {
        using var s = stem.forward(input);
        using var rs = relu.forward(s);
        using var p1 = pool.forward(rs);
        using var b1 = block1.forward(p1);
        using var p2 = pool.forward(b1);
        using var w = widen.forward(p2);
        using var rw = relu.forward(w);
        using var b2 = block2.forward(rw);
        using var flat = flatten.forward(b2);
        using var h = fc1.forward(flat);
        using var rh = relu.forward(h);
        return fc2.forward(rh);
    }
}
