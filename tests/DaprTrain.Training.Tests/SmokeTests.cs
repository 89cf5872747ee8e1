using DaprTrain.Training.Parameters;

namespace DaprTrain.Training.Tests;

public class SmokeTests
{
    [Fact]
    public void Mlp_learns_a_few_steps()
    {
        using var trainer = new Trainer(new TrainerOptions("mlp", new OptimizerSettings(OptimizerKind.Adam, 1e-3), 64, 1));
        var data = TestData.Mnist8k2k;
        var sampler = new EpochSampler(data.TrainIndices, 64, 1);
        var batch = new long[64];
        float first = 0, last = 0;
        for (int i = 0; i < 200; i++)
        {
            int n = sampler.Next(batch);
            last = trainer.TrainStep(data.Train, batch.AsSpan(0, n));
            if (i == 0) first = last;
        }
        last.Should().BeLessThan(first / 3);
    }
}
