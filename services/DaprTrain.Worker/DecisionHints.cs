using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using DaprTrain.Coordination;
using DaprTrain.Coordination.Security;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Worker;

/// <summary>
/// A round's decision handed on between peers (issue 16; Job:DecisionHints). The worker whose report closes a round gets
/// the coordinator's decision, signed by the coordinator's key (<see cref="DecisionKey"/>), and publishes it on
/// <see cref="DaprTrain.Contracts.DaprTopics.Decisions"/>; a worker waiting for that round's decision takes it from there
/// when the coordinator's key its view carries verifies it, which is what the coordinator would have answered it, without
/// asking. Whoever can publish on the broker can send a hint, and none can sign: a hint of the awaited round whose
/// signature fails is dropped with the reason and the worker asks the coordinator at its next poll (and renews its view
/// before the next round, in case the coordinator's key changed). A hint of a later round, or one that came before the
/// view named a key, is not verified and only wakes the wait (the worker asks at once, and a hint not borne out makes
/// that wait poll alone). Only a hint of this job counts, and only for
/// the round awaited (or a later one) since <see cref="Await"/>, set before the report that may leave the round open, so that a
/// hint that overtakes that report's answer is not lost.
/// </summary>
/// <remarks>
/// Layout (little-endian): format (1 byte, 2); round (8); 16 random bytes; generation (4); view version (8); the job id (1
/// byte of length, 1-64, then UTF-8); the included senders and the reporters (each a count of 2 bytes, then for each id 2
/// bytes of length, 1-<see cref="MaxIdBytes"/>, and UTF-8); the coordinator's signature (<see cref="NodeKey.SignatureBytes"/>).
/// The random bytes make every hint a message of its own, since the inbox takes a message it has seen (by its content's
/// hash) for a redelivery, and a forged copy of a hint to come must not make the real one look like one; the job id, since
/// jobs may share a broker and topics. A decision that does not fit <see cref="MaxLength"/> is not handed on: peers ask.
/// </remarks>
/// <param name="jobId">The job whose hints count (Job:JobId).</param>
public sealed class DecisionHints(string jobId)
{
    private const byte Format = 2;
    private const int Fixed = 1 + sizeof(long) + 16 + sizeof(int) + sizeof(long);

    /// <summary>The most senders a hint names in each list (Job:Workers is at most 64).</summary>
    public const int MaxIds = 64;

    /// <summary>The longest id a hint carries, in UTF-8 bytes (the actor takes ids of up to 128 characters).</summary>
    public const int MaxIdBytes = 512;

    /// <summary>The longest hint taken or sent.</summary>
    public const int MaxLength = 16 * 1024;

    /// <summary>The largest chunk a hint arrives in (a hint, the chunk header, room to spare): the inbox reads no more.</summary>
    public const int MaxChunkBytes = MaxLength + 1024;

    /// <summary>What the hints' inbox holds of incomplete messages at most (and the largest message it takes).</summary>
    public const int MaxMessageBytes = 2 * MaxChunkBytes;

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[] _job = Encoding.UTF8.GetBytes(jobId);
    private long _awaited = long.MaxValue;
    private int _awaitedGeneration;
    private int _hinted;
    private RoundDecision? _decided;
    private bool _rejected;
    private string? _trustedKey;
    private ECDsa? _coordinatorKey;

    /// <summary>
    /// The hint that hands <paramref name="decision"/> of <paramref name="jobId"/> on; null when the decision carries no
    /// signature or does not fit a hint (the peers then ask the coordinator).
    /// </summary>
    public static byte[]? Encode(string jobId, RoundDecision decision)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(decision.Round, 1);
        if (decision.Signature is not { Length: NodeKey.SignatureBytes } signature) return null;
        var job = Encoding.UTF8.GetBytes(jobId);
        if (job.Length is 0 or > 64) throw new ArgumentException($"a job id of 1 to 64 bytes, not {job.Length}", nameof(jobId));
        if (decision.Included.Count > MaxIds || decision.Reporters.Count > MaxIds) return null;
        List<byte[]> ids;
        try
        {
            // As strictly as the peers decode: an id that is no valid UTF-16 (a lone surrogate) is not handed on.
            ids = decision.Included.Concat(decision.Reporters).Select(id => Strict.GetBytes(id)).ToList();
        }
        catch (EncoderFallbackException)
        {
            return null;
        }
        if (ids.Any(id => id.Length is 0 or > MaxIdBytes)) return null;
        int length = Fixed + 1 + job.Length + 2 + 2 + ids.Sum(id => 2 + id.Length) + NodeKey.SignatureBytes;
        if (length > MaxLength) return null;

        var payload = new byte[length];
        var span = payload.AsSpan();
        span[0] = Format;
        BinaryPrimitives.WriteInt64LittleEndian(span[1..], decision.Round);
        RandomNumberGenerator.Fill(span.Slice(9, 16));
        BinaryPrimitives.WriteInt32LittleEndian(span[25..], decision.Generation);
        BinaryPrimitives.WriteInt64LittleEndian(span[29..], decision.ViewVersion);
        int at = Fixed;
        span[at++] = (byte)job.Length;
        job.CopyTo(span[at..]);
        at += job.Length;
        at = WriteIds(span, at, ids.Take(decision.Included.Count).ToList());
        at = WriteIds(span, at, ids.Skip(decision.Included.Count).ToList());
        signature.CopyTo(span[at..]);
        return payload;
    }

    private static int WriteIds(Span<byte> span, int at, IReadOnlyList<byte[]> ids)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(span[at..], (ushort)ids.Count);
        at += 2;
        foreach (var id in ids)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(span[at..], (ushort)id.Length);
            id.CopyTo(span[(at + 2)..]);
            at += 2 + id.Length;
        }
        return at;
    }

    /// <summary>
    /// The coordinator's decision key as the applied view names it (base64 SubjectPublicKeyInfo): hints are verified with it
    /// from now on. A key that does not import verifies nothing (hints only wake the wait). Under the lock of <see cref="Take"/>:
    /// the key it replaces is disposed.
    /// </summary>
    public void Trust(string? decisionKey)
    {
        if (decisionKey == _trustedKey) return;
        _trustedKey = decisionKey;
        var old = _coordinatorKey;
        _coordinatorKey = decisionKey is null ? null : PublicKeys.TryImport(decisionKey, out _);
        old?.Dispose();
    }

    /// <summary>From now on a hint of <paramref name="round"/> (or later) counts; none has come for it yet. Called under the same lock as <see cref="Take"/>.</summary>
    public void Await(long round, int generation = 0)
    {
        _decided = null;
        _rejected = false;
        _awaitedGeneration = generation;
        Volatile.Write(ref _hinted, 0);
        Interlocked.Exchange(ref _awaited, round);
    }

    /// <summary>True when a hint of the awaited round (or a later one) came since <see cref="Await"/>.</summary>
    public bool Hinted => Volatile.Read(ref _hinted) == 1;

    /// <summary>
    /// Whether a hint of the awaited round failed the check since <see cref="Await"/>: forged, or signed by a key the view
    /// does not name (a coordinator that had to make a new key): the worker renews its view before its next round.
    /// </summary>
    public bool Rejected => _rejected;

    /// <summary>The awaited round's decision, when a hint brought it signed by the coordinator's key; else null. Under the lock of <see cref="Take"/>.</summary>
    public RoundDecision? Decided(long round, int generation = 0) =>
        _decided is { } decided && decided.Round == round && decided.Generation == generation ? decided : null;

    /// <summary>
    /// A delivered hint: dropped with the reason when malformed, of another job, or (of the awaited round or a later one)
    /// not signed by the coordinator's key; applied otherwise, and acted on only from the awaited round on.
    /// </summary>
    public DeliveryResult Take(byte[] payload)
    {
        if (Parse(payload, out string? problem) is not { } hint) return DeliveryResult.Poison(problem!);
        if (!hint.Job.SequenceEqual(_job)) return DeliveryResult.Poison("a decision hint of another job");
        long awaited = Interlocked.Read(ref _awaited);
        // An earlier round's (the worker's own hint coming back, a late or a replayed one): not worth a verification.
        if (hint.Decision.Round < awaited) return DeliveryResult.Applied;
        // A later round's, or one before the view named a key: it only wakes the wait (the worker asks the coordinator,
        // once). Verified is only what could be taken, and only until one was: a verification (about 0.1-0.3 ms, under the
        // node's lock, as a signed gradient's is) is spent on nothing a sender can make the worker act on otherwise.
        var key = _coordinatorKey;
        if (key is not null && hint.Decision.Round == awaited && hint.Decision.Generation == _awaitedGeneration && _decided is null)
        {
            if (!DecisionKey.Verify(key, jobId, hint.Decision, hint.Decision.Signature))
            {
                _rejected = true;
                return DeliveryResult.Poison($"a decision hint of round {hint.Decision.Round} whose signature is not the coordinator's");
            }
            _decided = hint.Decision;
        }
        Volatile.Write(ref _hinted, 1);
        return DeliveryResult.Applied;
    }

    private readonly record struct Hint(byte[] Job, RoundDecision Decision);

    private static Hint? Parse(byte[] payload, out string? problem)
    {
        problem = null;
        if (payload.Length < Fixed + 1 + 1 + 4 + NodeKey.SignatureBytes || payload.Length > MaxLength)
        {
            problem = $"a decision hint is {Fixed + 6 + NodeKey.SignatureBytes} to {MaxLength} bytes, not {payload.Length}";
            return null;
        }
        var span = payload.AsSpan();
        if (span[0] != Format)
        {
            problem = $"a decision hint of format {span[0]}, not {Format}";
            return null;
        }
        long round = BinaryPrimitives.ReadInt64LittleEndian(span[1..]);
        int generation = BinaryPrimitives.ReadInt32LittleEndian(span[25..]);
        long viewVersion = BinaryPrimitives.ReadInt64LittleEndian(span[29..]);
        if (round < 1 || generation < 0 || viewVersion < -1)
        {
            problem = $"a decision hint names round {round}, generation {generation}, view version {viewVersion}: rounds from 1, generations from 0, versions from -1";
            return null;
        }
        int at = Fixed;
        int jobLength = span[at++];
        if (jobLength is 0 or > 64 || at + jobLength > span.Length)
        {
            problem = $"a decision hint's job id of {jobLength} bytes (1 to 64, within the hint)";
            return null;
        }
        var job = span.Slice(at, jobLength).ToArray();
        at += jobLength;
        var body = span[..^NodeKey.SignatureBytes];
        if (ReadIds(body, ref at, "included", out problem) is not { } included || ReadIds(body, ref at, "reporters", out problem) is not { } reporters) return null;
        if (at != body.Length)
        {
            problem = $"a decision hint with {body.Length - at} bytes between its lists and its signature";
            return null;
        }
        var decision = new RoundDecision(generation, round, included, reporters, viewVersion) { Signature = span[^NodeKey.SignatureBytes..].ToArray() };
        return new Hint(job, decision);
    }

    private static List<string>? ReadIds(ReadOnlySpan<byte> body, ref int at, string list, out string? problem)
    {
        problem = null;
        if (at + 2 > body.Length)
        {
            problem = $"a decision hint ends before its {list} list";
            return null;
        }
        int count = BinaryPrimitives.ReadUInt16LittleEndian(body[at..]);
        at += 2;
        if (count > MaxIds)
        {
            problem = $"a decision hint names {count} {list}; at most {MaxIds}";
            return null;
        }
        var ids = new List<string>(count);
        for (int i = 0; i < count; i++)
        {
            int length = at + 2 <= body.Length ? BinaryPrimitives.ReadUInt16LittleEndian(body[at..]) : -1;
            if (length is < 1 or > MaxIdBytes || at + 2 + length > body.Length)
            {
                problem = $"a decision hint's {list} id {i} has no length of 1 to {MaxIdBytes} bytes within the hint";
                return null;
            }
            try
            {
                ids.Add(Strict.GetString(body.Slice(at + 2, length)));
            }
            catch (DecoderFallbackException)
            {
                problem = $"a decision hint's {list} id {i} is not UTF-8";
                return null;
            }
            at += 2 + length;
        }
        return ids;
    }
}
