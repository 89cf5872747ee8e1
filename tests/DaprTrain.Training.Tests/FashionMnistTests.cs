using DaprTrain.Training.Data;

namespace DaprTrain.Training.Tests;

/// <summary>A fact that needs the full Fashion-MNIST; skipped, with the reason, where it is not installed.</summary>
public sealed class FashionMnistFactAttribute : FactAttribute
{
    public FashionMnistFactAttribute()
    {
        if (TestData.FashionMnistMissingReason is { } reason) Skip = reason;
    }
}

/// <summary>The packaged Fashion-MNIST read as it is, and the residual CNN learning it.</summary>
public sealed class FashionMnistTests
{
    [FashionMnistFact]
    public void The_packaged_files_are_the_full_dataset_read_as_they_are()
    {
        using var data = TrainingData.FromMnistFolder(TestData.FashionMnistDirectory!, seed: 1, dataset: IdxDataset.FashionMnist);

        data.Train.Count.Should().Be(60_000);
        data.Holdout.Count.Should().Be(10_000);
        data.TrainIndices.Should().HaveCount(60_000);
        data.Description.Should().StartWith("Fashion-MNIST from");
        data.Train.Name.Should().Be("fashion-mnist-train");
        // Fashion-MNIST is balanced: 6,000 train and 1,000 test images of each of the ten kinds.
        data.Train.Labels.GroupBy(l => l).Select(g => g.Count()).Should().AllBeEquivalentTo(6_000).And.HaveCount(10);
        data.Holdout.Labels.GroupBy(l => l).Select(g => g.Count()).Should().AllBeEquivalentTo(1_000).And.HaveCount(10);
        // Not MNIST under another name: the first test labels are 9 2 1 1 6 (ankle boot, pullover, trouser, trouser, shirt).
        data.Holdout.Labels.Take(5).Should().Equal(9, 2, 1, 1, 6);
    }

    [FashionMnistFact]
    public void The_residual_cnn_learns_fashion_mnist_in_a_hundred_steps()
    {
        // 100 steps of 64 (6,400 images, about a tenth of an epoch) against 2,000 test images: far from the 90% of a full
        // run (BENCHMARKS.md), but a model that does not learn, or data read wrongly, stays near 10%.
        using var data = TrainingData.FromMnistFolder(TestData.FashionMnistDirectory!, seed: 3, trainLimit: 6_400, dataset: IdxDataset.FashionMnist);
        using var trainer = new Trainer(Train.Options("resnet", seed: 3));
        Train.Steps(trainer, data, 100);
        var result = trainer.Evaluate(data.Holdout, data.HoldoutIndices.Take(2_000).ToArray());
        result.Accuracy.Should().BeGreaterThan(0.70);
    }
}
