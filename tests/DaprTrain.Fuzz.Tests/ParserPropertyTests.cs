using System.Buffers.Binary;
using CsCheck;
using DaprTrain.Dapr;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Storage;
using DaprTrain.Fuzz;
using DaprTrain.Training;
using DaprTrain.Training.Parameters;

namespace DaprTrain.Fuzz.Tests;

/// <summary>
/// Every parser of outside input, on random bytes and on edited valid encodings: each input is accepted or refused
/// with the parser's documented exception, never anything else, and the parse allocates within a bound proportional
/// to the input (<see cref="FuzzTargets.Execute"/>). Fixed seeds and iteration counts keep the runs deterministic and short.
/// </summary>
public sealed class ParserPropertyTests
{
    private const int RandomIterations = 400;
    private const int MutantIterations = 2500;
    private const int FileMutantIterations = 1200;

    [Theory]
    [InlineData("wire")]
    [InlineData("signed-wire")]
    [InlineData("chunk")]
    [InlineData("checkpoint")]
    [InlineData("job-checkpoint")]
    [InlineData("idx")]
    [InlineData("faults")]
    [InlineData("prices")]
    [InlineData("platforms")]
    [InlineData("prediction")]
    public void Random_bytes_are_accepted_or_refused_with_the_documented_exception(string name)
    {
        var target = FuzzTargets.Get(name);
        var tally = Property.Run(target, Inputs.RandomBytes(512), RandomIterations, seed: 20261202, KnownFindings.For(name));
        (tally.Accepted + tally.Rejected + tally.KnownFindings).Should().Be(RandomIterations);
    }

    [Theory]
    [InlineData("wire", MutantIterations)]
    [InlineData("chunk", MutantIterations)]
    [InlineData("checkpoint", MutantIterations)]
    [InlineData("job-checkpoint", MutantIterations)]
    [InlineData("idx", FileMutantIterations)]
    [InlineData("faults", FileMutantIterations)]
    [InlineData("prices", FileMutantIterations)]
    [InlineData("platforms", FileMutantIterations)]
    [InlineData("prediction", FileMutantIterations)]
    public void Edited_valid_encodings_are_accepted_or_refused_with_the_documented_exception(string name, int iterations)
    {
        var target = FuzzTargets.Get(name);
        var tally = Property.Run(target, Inputs.Mutants(target), iterations, seed: 14_9, KnownFindings.For(name));
        // Both outcomes occur: the edits reach past the first checks (some inputs still parse) and break things (some do not).
        tally.Accepted.Should().BePositive("some edited inputs still parse, so the edits reach the fields behind the magic number and checksum");
        tally.Rejected.Should().BePositive();
    }

    /// <summary>
    /// Signed messages edited anywhere (the checksum re-sealed after the edit, as an attacker on the broker would): the
    /// signature over header and checksum no longer verifies, so nothing edited gets in, and nothing escapes as a crash.
    /// </summary>
    [Fact]
    public void Edited_signed_messages_are_refused_with_the_documented_exception()
    {
        var target = FuzzTargets.Get("signed-wire");
        var tally = Property.Run(target, Inputs.Mutants(target), MutantIterations, seed: 11_3, KnownFindings.For("signed-wire"));
        tally.Rejected.Should().BePositive();
        (tally.Accepted + tally.Rejected + tally.KnownFindings).Should().Be(MutantIterations);
    }

    [Fact]
    public void Every_seed_is_accepted()
    {
        foreach (var target in FuzzTargets.All)
        {
            foreach (var (seedName, bytes) in target.Seeds())
            {
                FuzzTargets.Execute(target, bytes).Should().Be(FuzzOutcome.Accepted, $"{seedName} is a valid {target.Name} input");
            }
        }
    }

    [Fact]
    public void Unsealed_wire_messages_fail_their_checksum_and_nothing_else()
    {
        // The wire target repairs the checksum so edits reach the fields; here the edits are left as they are.
        var target = new FuzzTarget("wire-as-is", "", typeof(MessageRejectedException), FuzzTargets.WireAsIs, Seeds.Wire);
        var tally = Property.Run(target, Inputs.Mutants(target), MutantIterations, seed: 3);
        tally.Rejected.Should().BeGreaterThan(MutantIterations * 9 / 10);
    }

    private static readonly Gen<WireMessage> Messages =
        Gen.Select(Gen.Int[1, 4], Gen.String[Gen.Char.AlphaNumeric, 1, 40], Gen.Int[0, int.MaxValue], Gen.Long[0, long.MaxValue], Gen.String[Gen.Char.AlphaNumeric, 1, 40],
            Gen.Select(Gen.Int, Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue], Gen.Single[-1e6f, 1e6f].Array[0, 300]),
            (kind, job, generation, round, sender, rest) => new WireMessage((MessageKind)kind, job, generation, round, sender, rest.Item1, rest.Item2, rest.Item3, rest.Item4));

    [Fact]
    public void Wire_messages_survive_a_round_trip()
    {
        Property.ForAll(Messages, 300, seed: 1, message =>
        {
            var decoded = WireCodec.Decode(WireCodec.Encode(message));
            decoded.Key.Should().Be(message.Key);
            (decoded.SampleCount, decoded.Offset).Should().Be((message.SampleCount, message.Offset));
            decoded.Values.ToArray().Should().Equal(message.Values.ToArray());
        });
    }

    [Fact]
    public void A_wire_message_that_claims_two_billion_values_is_refused_without_allocating_for_them()
    {
        var bytes = WireCodec.Encode(Seeds.WireMessages()[0]);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(32), int.MaxValue);
        FuzzTargets.Seal(bytes);
        Exception? thrown = null;
        long allocated = Property.Allocated(() => thrown = Record.Exception(() => WireCodec.Decode(bytes)));
        thrown.Should().BeOfType<MessageRejectedException>().Which.Reason.Should().Contain("wrong length");
        allocated.Should().BeLessThan(16 * 1024);
    }

    [Fact]
    public void Every_truncation_of_a_wire_message_is_refused()
    {
        var bytes = WireCodec.Encode(Seeds.WireMessages()[2]);
        for (int length = 0; length < bytes.Length; length++)
        {
            var act = () => WireCodec.Decode(bytes.AsSpan(0, length));
            act.Should().Throw<MessageRejectedException>();
        }
    }

    [Fact]
    public void A_checkpoint_that_claims_half_a_billion_weights_is_refused_without_allocating_for_them()
    {
        var checkpoint = Seeds.TrainingCheckpoints()[0];
        var bytes = CheckpointCodec.Encode(checkpoint);
        int weightCount = 8 + 4 + checkpoint.Model.Length + 4 + 8 * 5 + 8 * 3 + 4 * 2;
        BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(weightCount)).Should().Be(checkpoint.Weights.Length, "the offset of the weight count");
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(weightCount), int.MaxValue / 4);
        FuzzTargets.Seal(bytes);
        Exception? thrown = null;
        long allocated = Property.Allocated(() => thrown = Record.Exception(() => CheckpointCodec.Decode(bytes)));
        thrown.Should().BeOfType<CheckpointFormatException>();
        allocated.Should().BeLessThan(16 * 1024);
    }

    [Fact]
    public void Checkpoints_survive_a_round_trip_inside_job_checkpoints()
    {
        Property.ForAll(Gen.Select(Gen.Float[-10, 10].Array[0, 200], Gen.Int[0, 3], Gen.Long[0, long.MaxValue], Gen.String[Gen.Char.AlphaNumeric, 1, 60]), 200, seed: 2, t =>
        {
            var (weights, buffers, round, writer) = t;
            var state = new TrainingCheckpoint("mlp", new OptimizerSettings(OptimizerKind.Adam, 1e-3), round, round, 7, 1, 2, weights,
                Enumerable.Range(0, buffers).Select(_ => weights.ToArray()).ToArray());
            var decoded = JobCheckpoints.Decode(JobCheckpoints.Encode(new JobCheckpoint(round, 3, writer, state)));
            (decoded.Round, decoded.Generation, decoded.Writer).Should().Be((round, 3, writer));
            decoded.State.Weights.Should().Equal(weights);
            decoded.State.OptimizerBuffers.Should().HaveCount(buffers);
        });
    }

    [Fact]
    public void Chunks_in_any_order_with_duplicates_reassemble_the_message()
    {
        Property.ForAll(Gen.Select(Gen.Byte.Array[0, 3000], Gen.Int[61, 700], Gen.Int.Array[1, 40]), 200, seed: 3, t =>
        {
            var (message, chunkBytes, order) = t;
            var chunks = ChunkCodec.Split(message, chunkBytes);
            var assembler = new ChunkAssembler(maxPendingBytes: 1 << 20);
            byte[]? assembled = null;
            // Every chunk once, in an order the generator picks, with some sent twice.
            foreach (int i in order.Select(o => (int)((uint)o % (uint)chunks.Count)).Concat(Enumerable.Range(0, chunks.Count)))
            {
                var result = assembler.Add(chunks[i]);
                result.Status.Should().NotBe(ChunkStatus.Rejected);
                if (result.Status == ChunkStatus.Complete) assembled = result.Message;
            }
            assembled.Should().Equal(message);
        });
    }
}
