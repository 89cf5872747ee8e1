using DaprTrain.Training.Parameters;

namespace DaprTrain.Training.Tests;

public class CheckpointTests
{
    [Theory]
    [InlineData(OptimizerKind.Adam, 1e-3)]
    [InlineData(OptimizerKind.Sgd, 0.05)]
    public void Resuming_from_a_checkpoint_continues_bit_for_bit(OptimizerKind kind, double lr)
    {
        // k is not a multiple of the epoch length (125 batches), so the data cursor is mid-epoch and an
        // epoch boundary falls between k and 2k.
        const int k = 100;
        var data = TestData.Mnist8k2k;
        var options = Train.Options("mlp", seed: 21, kind: kind, lr: lr);

        using var uninterrupted = new Trainer(options);
        Train.Steps(uninterrupted, data, 2 * k);

        byte[] bytes;
        using (var first = new Trainer(options))
        {
            var sampler = Train.Steps(first, data, k);
            bytes = CheckpointCodec.Encode(first.CaptureCheckpoint(k, sampler));
        }

        using var resumed = new Trainer(options with { Seed = 999 });
        var resumedSampler = new EpochSampler(data.TrainIndices, 64, 21);
        var checkpoint = CheckpointCodec.Decode(bytes);
        resumed.RestoreCheckpoint(checkpoint, resumedSampler);
        checkpoint.Step.Should().Be(k);
        Train.Steps(resumed, data, k, resumedSampler);

        Train.Weights(resumed).Should().Equal(Train.Weights(uninterrupted));
    }

    private static (Trainer Trainer, byte[] Bytes) Saved()
    {
        var trainer = new Trainer(Train.Options("mlp", seed: 4));
        var sampler = Train.Steps(trainer, TestData.Mnist8k2k, 3);
        return (trainer, CheckpointCodec.Encode(trainer.CaptureCheckpoint(3, sampler)));
    }

    private static void ShouldFailAndLeaveModelUntouched(byte[] bad, string expectedMessage)
    {
        using var target = new Trainer(Train.Options("mlp", seed: 77));
        var before = Train.Weights(target);
        var act = () => target.RestoreCheckpoint(CheckpointCodec.Decode(bad), null);
        act.Should().Throw<CheckpointFormatException>().WithMessage(expectedMessage);
        Train.Weights(target).Should().Equal(before);
        target.Optimizer.StepCount.Should().Be(0);
    }

    [Fact]
    public void A_flipped_byte_is_detected()
    {
        var (trainer, bytes) = Saved();
        using (trainer)
        {
            foreach (int position in new[] { 10, bytes.Length / 2, bytes.Length - 3 })
            {
                var bad = bytes.ToArray();
                bad[position] ^= 0x10;
                ShouldFailAndLeaveModelUntouched(bad, "*checksum mismatch*");
            }
        }
    }

    [Fact]
    public void A_truncated_checkpoint_is_detected()
    {
        var (trainer, bytes) = Saved();
        using (trainer)
        {
            ShouldFailAndLeaveModelUntouched(bytes[..(bytes.Length / 2)], "*checksum mismatch*truncated*");
            ShouldFailAndLeaveModelUntouched(bytes[..10], "*truncated*");
        }
    }

    [Fact]
    public void An_unknown_format_version_is_named()
    {
        var (trainer, bytes) = Saved();
        using (trainer)
        {
            var bad = bytes.ToArray();
            bad[4] = 9;
            ShouldFailAndLeaveModelUntouched(bad, "*unsupported checkpoint format version 9*reads version 1*");
        }
    }

    [Fact]
    public void Not_a_checkpoint_is_named()
    {
        ShouldFailAndLeaveModelUntouched("PK\u0003\u0004 definitely a zip file"u8.ToArray(), "*not a DaprTrain checkpoint*");
    }

    [Fact]
    public void A_checkpoint_of_another_model_is_rejected_without_changes()
    {
        using var cnn = new Trainer(Train.Options("cnn", seed: 4));
        var bytes = CheckpointCodec.Encode(cnn.CaptureCheckpoint(0, null));
        ShouldFailAndLeaveModelUntouched(bytes, "*model 'cnn'*runs 'mlp'*");
    }
}
