using System.Buffers.Binary;
using System.Security.Cryptography;
using DaprTrain.Coordination.Security;

namespace DaprTrain.Engine.Messaging;

/// <summary>
/// The signature block that follows a message's checksum: u64 fingerprint of the signing key, the 64-byte ECDSA P-256
/// signature, and the magic "DTSG". Signed: the header (kind, job, generation, round, sender, sample count, slice, offset,
/// length) and the XxHash3 checksum, plus the fingerprint. The checksum stands for the payload, so signing costs the same
/// for every model size; <see cref="WireCodec.Decode(byte[], int, int)"/> recomputes it over the values and rejects a mismatch,
/// so a payload changed under a valid signature is dropped as corrupted (but see README, "Trust model": XxHash3 is not a
/// cryptographic hash). A trailer, not a new format: the codec's framing and its checks stay as they are, and a chunked
/// message is verified once it is whole.
/// </summary>
public static class MessageSignature
{
    public const int TrailerBytes = 8 + NodeKey.SignatureBytes + 4;
    private static ReadOnlySpan<byte> Magic => "DTSG"u8;
    private static ReadOnlySpan<byte> Domain => "daprtrain-message-v1\n"u8;

    /// <summary>Signs a message sealed with <see cref="TrailerBytes"/> of room (<see cref="WireCodec.Begin"/>, <see cref="WireCodec.Seal"/>).</summary>
    public static void Sign(byte[] bytes, NodeKey key)
    {
        int length = bytes.Length - TrailerBytes;
        var trailer = bytes.AsSpan(length);
        BinaryPrimitives.WriteUInt64LittleEndian(trailer, key.Fingerprint);
        Span<byte> signed = stackalloc byte[MaxSignedBytes];
        int count = SignedData(bytes, length, key.Fingerprint, signed);
        key.Sign(signed[..count], trailer.Slice(8, NodeKey.SignatureBytes));
        Magic.CopyTo(trailer[(8 + NodeKey.SignatureBytes)..]);
    }

    /// <summary>The length of the message the trailer follows, or -1 when the bytes carry no signature block.</summary>
    public static int MessageLength(byte[] bytes) =>
        bytes.Length > TrailerBytes && bytes.AsSpan(bytes.Length - 4).SequenceEqual(Magic) ? bytes.Length - TrailerBytes : -1;

    /// <summary>
    /// Null when <paramref name="message"/> (decoded from the first <paramref name="length"/> bytes) is signed by the key
    /// <paramref name="keys"/> registers for its sender; otherwise the counter's category and the reason to drop it.
    /// </summary>
    public static (string Category, string Reason)? Check(byte[] bytes, int length, WireMessage message, MessageKeys keys)
    {
        var trailer = bytes.AsSpan(length);
        ulong fingerprint = BinaryPrimitives.ReadUInt64LittleEndian(trailer);
        if (!keys.TryGet(message.Sender, out var registered))
        {
            return ("unregistered key", $"{message.Kind} from {message.Sender}, who has no key in the membership view{keys.Describe(fingerprint)}");
        }
        if (registered.Fingerprint != fingerprint)
        {
            return keys.OwnerOf(fingerprint) is { } other
                ? ("wrong signer", $"{message.Kind} claims sender {message.Sender} but is signed with {other}'s key")
                : ("unregistered key", $"{message.Kind} from {message.Sender} is signed with key {fingerprint:x16}, which the view does not register (it names {registered.Fingerprint:x16})");
        }
        Span<byte> signed = stackalloc byte[MaxSignedBytes];
        int count = SignedData(bytes, length, fingerprint, signed);
        return PublicKeys.Verify(registered.Key, signed[..count], trailer.Slice(8, NodeKey.SignatureBytes))
            ? null
            : ("bad signature", $"{message.Kind} from {message.Sender}: the signature does not verify with its registered key (tampered or forged)");
    }

    private const int MaxSignedBytes = 32 + 64 + 2 * WireCodec.MaxIdentifierBytes + 16;

    private static int SignedData(byte[] bytes, int length, ulong fingerprint, Span<byte> destination)
    {
        int header = WireCodec.HeaderLength(bytes);
        Domain.CopyTo(destination);
        int position = Domain.Length;
        bytes.AsSpan(0, header).CopyTo(destination[position..]);
        position += header;
        bytes.AsSpan(length - 8, 8).CopyTo(destination[position..]);
        position += 8;
        BinaryPrimitives.WriteUInt64LittleEndian(destination[position..], fingerprint);
        return position + 8;
    }
}

/// <summary>
/// The public keys a node accepts messages from: those its membership view names, parsed once (a view that names the
/// same keys again reuses them). Not thread-safe: one node uses it at a time.
/// </summary>
public sealed class MessageKeys
{
    public static MessageKeys None { get; } = new(new Dictionary<string, Entry>(StringComparer.Ordinal));

    private readonly Dictionary<string, Entry> _byMember;

    private MessageKeys(Dictionary<string, Entry> byMember) => _byMember = byMember;

    public sealed record Entry(string PublicKey, ulong Fingerprint, ECDsa Key);

    public int Count => _byMember.Count;

    /// <summary>The keys of <paramref name="keys"/>; entries of <paramref name="previous"/> with the same public key are reused.</summary>
    public static MessageKeys From(IReadOnlyDictionary<string, string> keys, MessageKeys? previous = null)
    {
        if (previous is not null && previous._byMember.Count == keys.Count && keys.All(k => previous._byMember.TryGetValue(k.Key, out var e) && e.PublicKey == k.Value))
        {
            return previous;
        }
        var byMember = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var (member, publicKey) in keys)
        {
            if (previous?._byMember.Values.FirstOrDefault(e => e.PublicKey == publicKey) is { } known)
            {
                byMember[member] = known;
                continue;
            }
            // A key the coordinator took is a valid one (it checks at registration); one that is not is left out, and its
            // member's messages are dropped as unregistered.
            if (PublicKeys.TryImport(publicKey, out _) is { } key) byMember[member] = new Entry(publicKey, PublicKeys.Fingerprint(publicKey), key);
        }
        return new MessageKeys(byMember);
    }

    public bool TryGet(string member, out Entry entry) => _byMember.TryGetValue(member, out entry!);

    public string? OwnerOf(ulong fingerprint) => _byMember.FirstOrDefault(e => e.Value.Fingerprint == fingerprint).Key;

    internal string Describe(ulong fingerprint) => OwnerOf(fingerprint) is { } owner ? $" (it is signed with {owner}'s key)" : "";
}
