using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Worker;

/// <summary>
/// "Round r of job j is decided" between peers (issue 16; Job:DecisionHints). The worker whose report closes a round
/// publishes it on <see cref="DaprTrain.Contracts.DaprTopics.Decisions"/>; a worker waiting for that round's decision asks
/// the coordinator when it comes instead of at its next poll. Whoever can publish on the broker can send one, so a hint is
/// taken for nothing but when to ask: the coordinator's answer is the decision. Only a hint of this job and of the round
/// being waited for (or a later one) counts, set before the report that may leave the round open, so that a hint that
/// overtakes that report's answer is not lost; hints of earlier rounds are well-formed and ignored.
/// A hint is the round (8 bytes little-endian), 16 random bytes and the job id (UTF-8): the random bytes make every hint a
/// message of its own, since the inbox takes a message it has seen (by its content's hash) for a redelivery, and a forged
/// copy of a hint to come must not make the real one look like one; the job id, since jobs may share a broker and topics.
/// </summary>
/// <param name="jobId">The job whose hints count (Job:JobId).</param>
public sealed class DecisionHints(string jobId)
{
    private const int Fixed = sizeof(long) + 16;

    /// <summary>The longest hint: a job id is at most 64 ASCII characters (TrainingJobOptions.JobId).</summary>
    public const int MaxLength = Fixed + 64;

    /// <summary>The largest chunk a hint arrives in (a hint, the chunk header, room to spare): the inbox reads no more.</summary>
    public const int MaxChunkBytes = 1024;

    /// <summary>What the hints' inbox holds of incomplete messages at most (and the largest message it takes).</summary>
    public const int MaxMessageBytes = 4 * 1024;

    private readonly byte[] _job = Encoding.UTF8.GetBytes(jobId);
    private long _awaited = long.MaxValue;
    private int _hinted;

    /// <summary>The payload that says <paramref name="round"/> of <paramref name="jobId"/> is decided.</summary>
    public static byte[] Encode(string jobId, long round)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(round, 1);
        var job = Encoding.UTF8.GetBytes(jobId);
        if (Fixed + job.Length > MaxLength) throw new ArgumentException($"a job id of at most {MaxLength - Fixed} bytes, not {job.Length}", nameof(jobId));
        var payload = new byte[Fixed + job.Length];
        BinaryPrimitives.WriteInt64LittleEndian(payload, round);
        RandomNumberGenerator.Fill(payload.AsSpan(sizeof(long), 16));
        job.CopyTo(payload, Fixed);
        return payload;
    }

    /// <summary>From now on a hint of <paramref name="round"/> (or later) counts; none has come for it yet. Called under the same lock as <see cref="Take"/>.</summary>
    public void Await(long round)
    {
        Volatile.Write(ref _hinted, 0);
        Interlocked.Exchange(ref _awaited, round);
    }

    /// <summary>True when a hint of the awaited round (or a later one) came since <see cref="Await"/>.</summary>
    public bool Hinted => Volatile.Read(ref _hinted) == 1;

    /// <summary>A delivered hint: applied when well-formed and of this job (whatever its round), dropped with the reason otherwise.</summary>
    public DeliveryResult Take(byte[] payload)
    {
        if (payload.Length <= Fixed || payload.Length > MaxLength)
        {
            return DeliveryResult.Poison($"a decision hint is {Fixed + 1} to {MaxLength} bytes (round, 16 random bytes, job id), not {payload.Length}");
        }
        long round = BinaryPrimitives.ReadInt64LittleEndian(payload);
        if (round < 1) return DeliveryResult.Poison($"a decision hint names a round from 1 on, not {round}");
        if (!payload.AsSpan(Fixed).SequenceEqual(_job)) return DeliveryResult.Poison("a decision hint of another job");
        if (round >= Interlocked.Read(ref _awaited)) Volatile.Write(ref _hinted, 1);
        return DeliveryResult.Applied;
    }
}
