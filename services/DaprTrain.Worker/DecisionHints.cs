using System.Buffers.Binary;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Worker;

/// <summary>
/// "Round r is decided" between peers (issue 16; Job:DecisionHints). The worker whose report closes a round publishes it on
/// <see cref="DaprTrain.Contracts.DaprTopics.Decisions"/>; a worker waiting for that round's decision asks the coordinator
/// when it comes instead of at its next poll. Whoever can publish on the broker can send one, so a hint is taken for
/// nothing but when to ask: the coordinator's answer is the decision. Only a hint of the round being waited for (or a later
/// one) counts, set before the report that may leave the round open, so that a hint that overtakes that report's answer
/// is not lost; hints of earlier rounds are well-formed and ignored.
/// </summary>
public sealed class DecisionHints
{
    /// <summary>A hint's payload: the round, 8 bytes little-endian.</summary>
    public const int Length = sizeof(long);

    /// <summary>The largest chunk a hint arrives in (its 8 bytes, the chunk header, room to spare): the inbox reads no more.</summary>
    public const int MaxChunkBytes = 1024;

    private long _awaited = long.MaxValue;
    private int _hinted;

    /// <summary>The payload that says <paramref name="round"/> is decided.</summary>
    public static byte[] Encode(long round)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(round, 1);
        var payload = new byte[Length];
        BinaryPrimitives.WriteInt64LittleEndian(payload, round);
        return payload;
    }

    /// <summary>From now on a hint of <paramref name="round"/> (or later) counts; none has come for it yet.</summary>
    public void Await(long round)
    {
        Volatile.Write(ref _hinted, 0);
        Interlocked.Exchange(ref _awaited, round);
    }

    /// <summary>True when a hint of the awaited round (or a later one) came since <see cref="Await"/>.</summary>
    public bool Hinted => Volatile.Read(ref _hinted) == 1;

    /// <summary>A delivered hint: applied when well-formed (whatever its round), dropped with the reason otherwise.</summary>
    public DeliveryResult Take(byte[] payload)
    {
        if (payload.Length != Length) return DeliveryResult.Poison($"a decision hint is {Length} bytes (its round), not {payload.Length}");
        long round = BinaryPrimitives.ReadInt64LittleEndian(payload);
        if (round < 1) return DeliveryResult.Poison($"a decision hint names a round from 1 on, not {round}");
        if (round >= Interlocked.Read(ref _awaited)) Volatile.Write(ref _hinted, 1);
        return DeliveryResult.Applied;
    }
}
