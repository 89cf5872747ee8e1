using DaprTrain.Coordination;
using DaprTrain.Simulation;
using DaprTrain.Training;

namespace DaprTrain.Cli;

/// <summary>Stops a run whose loss or weights are no longer finite numbers (a learning rate far too high, typically) with the reason.</summary>
internal static class Divergence
{
    private const string Hint = "lower --lr (or use --optimizer adam)";

    public static void CheckLoss(double loss, string where)
    {
        if (!double.IsFinite(loss)) throw new TrainingDivergedException($"training diverged: the loss is {loss} at {where}; {Hint}.");
    }

    public static void CheckWeights(Trainer trainer, string where)
    {
        var weights = new float[trainer.Parameters.Count];
        trainer.Parameters.ExportWeights(weights);
        int bad = Array.FindIndex(weights, w => !float.IsFinite(w));
        if (bad >= 0) throw new TrainingDivergedException($"training diverged: weight {bad} is {weights[bad]} at {where}; {Hint}.");
    }

    /// <summary>A distributed run: every held-out loss it measured, and its final one.</summary>
    public static void Check(RunResult run)
    {
        string job = $"{run.Options.Topology.Name()} with {run.Options.Workers} workers, scenario '{run.Scenario}'";
        foreach (var round in run.Rounds)
        {
            if (round.Loss is double loss && !double.IsFinite(loss)) throw new TrainingDivergedException($"training diverged: the held-out loss is {loss} after round {round.Round} ({job}); {Hint}.");
        }
        if (!double.IsFinite(run.FinalLoss)) throw new TrainingDivergedException($"training diverged: the final held-out loss is {run.FinalLoss} ({job}); {Hint}.");
    }
}
