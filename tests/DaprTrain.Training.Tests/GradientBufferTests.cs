using DaprTrain.Training.Parameters;
using static TorchSharp.torch;

namespace DaprTrain.Training.Tests;

public class GradientBufferTests
{
    [Fact]
    public void Parameters_and_their_gradients_are_views_of_the_flat_buffers()
    {
        using var trainer = new Trainer(Train.Options("mlp"));
        var data = TestData.Mnist8k2k;
        trainer.ComputeGradient(data.Train, data.TrainIndices.AsSpan(0, 32));

        var flatGrad = trainer.Parameters.GradientSpan.ToArray();
        flatGrad.Should().Contain(g => g != 0);
        foreach (var (slice, parameter) in trainer.Parameters.Layout.Zip(trainer.Model.parameters()))
        {
            parameter.grad!.data<float>().ToArray().Should().Equal(flatGrad.AsSpan((int)slice.Offset, (int)slice.Length).ToArray(), $"{slice.Name}.grad is a view");
        }

        // Writing through the flat weight buffer is seen by the module's own parameter tensors.
        trainer.Parameters.WeightSpan[0] = 123.5f;
        trainer.Model.parameters().First().data<float>()[0, 0].Should().Be(123.5f);
    }

    [Fact]
    public void Backward_accumulates_into_the_flat_gradient_after_zeroing()
    {
        using var trainer = new Trainer(Train.Options("mlp"));
        var data = TestData.Mnist8k2k;
        trainer.ComputeGradient(data.Train, data.TrainIndices.AsSpan(0, 32));
        var first = trainer.Parameters.GradientSpan.ToArray();
        trainer.ComputeGradient(data.Train, data.TrainIndices.AsSpan(0, 32));
        trainer.Parameters.GradientSpan.ToArray().Should().Equal(first, "each step zeroes the buffer before backward");
    }

    [Fact]
    public void Exported_gradient_applied_on_a_replica_gives_the_source_weights()
    {
        var data = TestData.Mnist8k2k;
        using var source = new Trainer(Train.Options("mlp", seed: 3, kind: OptimizerKind.Sgd, lr: 0.05));
        using var replica = new Trainer(Train.Options("mlp", seed: 3, kind: OptimizerKind.Sgd, lr: 0.05));
        var gradient = new float[source.Parameters.Count];
        for (int step = 0; step < 5; step++)
        {
            var batch = data.TrainIndices.AsSpan(step * 64, 64);
            source.ComputeGradient(data.Train, batch);
            source.Parameters.ExportGradients(gradient);
            source.ApplyGradient();

            replica.Parameters.ImportGradients(gradient);
            replica.ApplyGradient();
        }
        Train.Weights(replica).Should().Equal(Train.Weights(source));
    }

    [Fact]
    public void Importing_a_gradient_of_the_wrong_length_is_rejected()
    {
        using var trainer = new Trainer(Train.Options("mlp"));
        var act = () => trainer.Parameters.ImportGradients(new float[10]);
        act.Should().Throw<ArgumentException>().WithMessage("*10 values*101770*");
    }

    [Fact]
    public void Flat_adam_matches_torch_adam()
    {
        // Reference: TorchSharp's own Adam on an identical copy of the parameters and gradient.
        using var trainer = new Trainer(Train.Options("mlp", lr: 0.01));
        var data = TestData.Mnist8k2k;
        using var reference = new TorchSharp.Modules.Parameter(trainer.Parameters.Weights.clone());
        using var adam = optim.Adam([reference], lr: 0.01);
        for (int i = 0; i < 3; i++)
        {
            trainer.ComputeGradient(data.Train, data.TrainIndices.AsSpan(i * 64, 64));
            reference.grad = trainer.Parameters.Gradients.clone();
            trainer.ApplyGradient();
            adam.step();
        }
        var ours = Train.Weights(trainer);
        var theirs = reference.data<float>().ToArray();
        ours.Zip(theirs).Max(p => Math.Abs(p.First - p.Second)).Should().BeLessThan(1e-6f);
    }
}
