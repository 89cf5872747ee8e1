using DaprTrain.Training.Parameters;
using static TorchSharp.torch;

namespace DaprTrain.Training.Tests;

/// <summary>Forced collections on another thread would disturb every test running beside them: these run alone.</summary>
[CollectionDefinition(nameof(OptimizerTests), DisableParallelization = true)]
public sealed class OptimizerTestsCollection;

[Collection(nameof(OptimizerTests))]
public class OptimizerTests
{
    /// <summary>
    /// A scalar argument (beta, learning rate) must stay alive for the whole native call. Created implicitly from a
    /// double, TorchSharp's Scalar is unreachable once its handle is read, and a collection on another thread could
    /// finalize it mid-call ("Unknown scalar type" from libtorch, seen once in CI). Collections run flat out here
    /// while both optimizers step; the update must still equal the formula computed by hand.
    /// </summary>
    [Theory]
    [InlineData(OptimizerKind.Adam)]
    [InlineData(OptimizerKind.Sgd)]
    public void Steps_survive_collections_on_another_thread_and_match_the_reference_update(OptimizerKind kind)
    {
        const int steps = 50_000;
        var settings = new OptimizerSettings(kind, LearningRate: 1e-4, Momentum: kind == OptimizerKind.Sgd ? 0.9 : 0);
        using var module = nn.Linear(8, 8);
        using var parameters = new FlatParameters(module, initSeed: 5);
        var initial = parameters.WeightSpan.ToArray();
        using var gradient = ones(parameters.Count, ScalarType.Float32);
        using var optimizer = new FlatOptimizer(parameters, settings);

        var stop = false;
        var collector = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        });
        collector.Start();
        try
        {
            for (int i = 0; i < steps; i++) optimizer.Step(gradient);
        }
        finally
        {
            Volatile.Write(ref stop, true);
            collector.Join();
        }

        double delta = Reference(settings, steps);
        var moved = parameters.WeightSpan.ToArray().Zip(initial, (w, w0) => (double)w - w0).ToArray();
        moved.Should().AllSatisfy(d => d.Should().BeApproximately(delta, 1e-3 * Math.Abs(delta)));
    }

    /// <summary>The same update in doubles, for a constant gradient of 1.</summary>
    private static double Reference(OptimizerSettings s, int steps)
    {
        double w = 0, m = 0, v = 0;
        for (int t = 1; t <= steps; t++)
        {
            if (s.Kind == OptimizerKind.Sgd)
            {
                m = s.Momentum * m + 1;
                w -= s.LearningRate * m;
                continue;
            }
            m = s.Beta1 * m + (1 - s.Beta1);
            v = s.Beta2 * v + (1 - s.Beta2);
            double mHat = m / (1 - Math.Pow(s.Beta1, t));
            double vHat = v / (1 - Math.Pow(s.Beta2, t));
            w -= s.LearningRate * mHat / (Math.Sqrt(vHat) + s.Epsilon);
        }
        return w;
    }
}
