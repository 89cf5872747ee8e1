namespace DaprTrain.Training.Tests;

/// <summary>
/// Seeded runs give bit-identical weights. Every trainer draws its randomness from its own SplitMix64
/// (never torch's global generator), so these tests hold while other test classes run in parallel.
/// </summary>
public class DeterminismTests
{
    [Theory]
    [InlineData("mlp", 120)]
    [InlineData("cnn", 20)]
    [InlineData("resnet", 4)]
    public void Same_seed_gives_bit_identical_weights_other_seed_does_not(string model, int steps)
    {
        var data = TestData.Mnist8k2k;
        using var a = new Trainer(Train.Options(model, seed: 5));
        using var b = new Trainer(Train.Options(model, seed: 5));
        using var c = new Trainer(Train.Options(model, seed: 6));
        Train.Steps(a, data, steps);
        Train.Steps(b, data, steps);
        Train.Steps(c, data, steps);
        Train.Weights(a).Should().Equal(Train.Weights(b));
        Train.Weights(a).Should().NotEqual(Train.Weights(c));
    }

    [Fact]
    public void Initial_weights_depend_only_on_the_seed()
    {
        using var a = new Trainer(Train.Options("mlp", seed: 9));
        using var b = new Trainer(Train.Options("mlp", seed: 9));
        Train.Weights(a).Should().Equal(Train.Weights(b));
        Train.Weights(a).Should().Contain(w => w != 0);
    }
}
