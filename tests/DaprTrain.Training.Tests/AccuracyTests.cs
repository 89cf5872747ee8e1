namespace DaprTrain.Training.Tests;

/// <summary>Real training on the shared MNIST test split (8,000 train / 2,000 held out, seed 7).</summary>
public class AccuracyTests
{
    [Fact]
    public void Mlp_reaches_95_percent_held_out_accuracy()
    {
        var data = TestData.Mnist8k2k;
        using var trainer = new Trainer(Train.Options("mlp"));
        Train.Epochs(trainer, data, epochs: 8);
        var result = trainer.Evaluate(data.Holdout, data.HoldoutIndices);
        result.Accuracy.Should().BeGreaterThanOrEqualTo(0.95);
        result.Samples.Should().Be(2000);
    }

    [Fact]
    public void Cnn_reaches_97_5_percent_held_out_accuracy()
    {
        var data = TestData.Mnist8k2k;
        using var trainer = new Trainer(Train.Options("cnn"));
        Train.Epochs(trainer, data, epochs: 3);
        var result = trainer.Evaluate(data.Holdout, data.HoldoutIndices);
        result.Accuracy.Should().BeGreaterThanOrEqualTo(0.975);
    }
}
