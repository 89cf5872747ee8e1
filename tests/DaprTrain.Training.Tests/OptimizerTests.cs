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

    /// <summary>
    /// A sparse step (top-k's aggregate) leaves a coordinate whose gradient is zero exactly as it was: weight, momentum and
    /// second moment; the others take the dense step's bits. Dense steps keep moving a silent coordinate on its momentum,
    /// which is what the lazy step is for.
    /// </summary>
    [Theory]
    [InlineData(OptimizerKind.Adam)]
    [InlineData(OptimizerKind.Sgd)]
    public void A_sparse_step_leaves_unsent_coordinates_and_their_state_alone_and_steps_the_others_as_a_dense_step_does(OptimizerKind kind)
    {
        var settings = new OptimizerSettings(kind, LearningRate: 1e-2, Momentum: kind == OptimizerKind.Sgd ? 0.9 : 0);
        using var module = nn.Linear(8, 8);
        using var sparseParameters = new FlatParameters(module, initSeed: 5);
        using var denseModule = nn.Linear(8, 8);
        using var denseParameters = new FlatParameters(denseModule, initSeed: 5);
        using var sparse = new FlatOptimizer(sparseParameters, settings);
        using var dense = new FlatOptimizer(denseParameters, settings);
        int n = (int)sparseParameters.Count;
        var random = new Random(3);
        float[] Full() => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();

        // Two full rounds: every coordinate sent, the sparse step must be the dense one, bit for bit.
        for (int round = 0; round < 2; round++)
        {
            using var full = tensor(Full());
            sparse.Step(full, sparse: true);
            dense.Step(full);
        }
        sparseParameters.WeightSpan.ToArray().Should().Equal(denseParameters.WeightSpan.ToArray());

        // Then a round where only the even coordinates were sent.
        var before = sparseParameters.WeightSpan.ToArray();
        var stateBefore = sparse.StateBuffers.Select(b => FlatOptimizer.Span(b).ToArray()).ToList();
        var values = Full();
        for (int i = 1; i < n; i += 2) values[i] = 0f;
        using (var half = tensor(values))
        {
            sparse.Step(half, sparse: true);
            dense.Step(half);
        }
        var after = sparseParameters.WeightSpan.ToArray();
        var denseAfter = denseParameters.WeightSpan.ToArray();
        var stateAfter = sparse.StateBuffers.Select(b => FlatOptimizer.Span(b).ToArray()).ToList();
        for (int i = 0; i < n; i++)
        {
            if (i % 2 == 1)
            {
                after[i].Should().Be(before[i], $"coordinate {i} was not sent");
                denseAfter[i].Should().NotBe(before[i], $"a dense step moves coordinate {i} on its momentum");
                foreach (var (b, a) in stateBefore.Zip(stateAfter)) a[i].Should().Be(b[i], $"coordinate {i}'s optimizer state stays");
            }
            else
            {
                after[i].Should().Be(denseAfter[i], $"coordinate {i} was sent: the dense step's bits");
            }
        }
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
