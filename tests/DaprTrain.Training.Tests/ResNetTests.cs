using DaprTrain.Training.Models;
using static TorchSharp.torch;

namespace DaprTrain.Training.Tests;

public sealed class ResNetTests
{
    [Fact]
    public void The_residual_cnn_has_1_to_3_million_parameters_all_in_the_flat_vector_and_no_buffers()
    {
        using var trainer = new Trainer(Train.Options("resnet"));
        trainer.Parameters.Count.Should().BeInRange(1_000_000, 3_000_000);
        trainer.Parameters.Layout.Sum(s => s.Length).Should().Be(trainer.Parameters.Count);
        // Buffers (BatchNorm's running statistics) would live outside the exchanged vector and let replicas drift apart.
        trainer.Model.buffers().Should().BeEmpty();
        trainer.Parameters.Layout.Select(s => s.Name).Should().Contain(["block1.conv1.weight", "block2.conv2.bias", "fc1.weight"]);
    }

    [Fact]
    public void Its_shortcut_carries_the_input_past_the_residual_branch()
    {
        // With the branch's weights and biases at zero a residual block is relu(x): the shortcut is really there.
        using var block = new ResidualBlock("block", 4);
        using (no_grad())
        {
            foreach (var parameter in block.parameters()) parameter.zero_();
        }
        using var input = randn(2, 4, 5, 5, generator: new TorchSharp.torch.Generator(7));
        using var output = block.forward(input);
        using var expected = input.relu();
        output.allclose(expected).Should().BeTrue();
    }
}
