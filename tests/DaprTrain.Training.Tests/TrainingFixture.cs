using DaprTrain.Training.Data;
using DaprTrain.Training.Parameters;

namespace DaprTrain.Training.Tests;

internal static class Train
{
    public static TrainerOptions Options(string model = "mlp", ulong seed = 1, double lr = 1e-3, int batch = 64, OptimizerKind kind = OptimizerKind.Adam) =>
        new(model, new OptimizerSettings(kind, lr, Momentum: kind == OptimizerKind.Sgd ? 0.9 : 0), batch, seed);

    /// <summary>Runs <paramref name="steps"/> optimizer steps over the shared split; returns the sampler for inspection.</summary>
    public static EpochSampler Steps(Trainer trainer, TrainingData data, int steps, EpochSampler? sampler = null)
    {
        sampler ??= new EpochSampler(data.TrainIndices, trainer.Options.BatchSize, trainer.Options.Seed);
        var batch = new long[trainer.Options.BatchSize];
        for (int i = 0; i < steps; i++)
        {
            int n = sampler.Next(batch);
            trainer.TrainStep(data.Train, batch.AsSpan(0, n));
        }
        return sampler;
    }

    public static void Epochs(Trainer trainer, TrainingData data, int epochs)
    {
        var sampler = new EpochSampler(data.TrainIndices, trainer.Options.BatchSize, trainer.Options.Seed);
        Steps(trainer, data, sampler.BatchesPerEpoch * epochs, sampler);
    }

    public static float[] Weights(Trainer trainer)
    {
        var weights = new float[trainer.Parameters.Count];
        trainer.Parameters.ExportWeights(weights);
        return weights;
    }
}
