using System.Security.Cryptography;
using System.Text;

namespace DaprTrain.Coordination.Security;

/// <summary>
/// Who may join a job and how they prove it: only the job's worker ids (worker-1 .. worker-N), each join carrying an
/// HMAC-SHA256 under the job's secret over the job, the member and the public key it registers (so a captured proof
/// registers no other key). The parameter server proves its key the same way for a generation. A member leaves only
/// for itself: a leave is signed with the key the member registered, over the view version it leaves from (so a
/// recorded leave cannot be replayed once the membership has changed). Heartbeats and the calls of a round (reports,
/// closes, weight hashes, sync requests: <see cref="SignedCall"/>) are signed by the caller's registered key too. The
/// secret comes from a Kubernetes Secret the chart generates, or the run file; never from a view or a message.
/// </summary>
public sealed class JobAdmission
{
    public const int MinSecretLength = 16;

    private readonly byte[] _secret;
    private readonly HashSet<string> _members;

    public JobAdmission(string secret, IEnumerable<string> members)
    {
        if (string.IsNullOrEmpty(secret) || secret.Length < MinSecretLength) throw new ArgumentException($"a job secret needs at least {MinSecretLength} characters");
        _secret = Encoding.UTF8.GetBytes(secret);
        _members = new HashSet<string>(members, StringComparer.Ordinal);
    }

    /// <summary>The admission of a job whose workers are worker-1 .. worker-<paramref name="workers"/>.</summary>
    public static JobAdmission ForWorkers(string secret, int workers) => new(secret, Enumerable.Range(1, workers).Select(n => $"worker-{n}"));

    public bool Admits(string member) => _members.Contains(member);

    public static string JoinProof(string secret, string job, string member, string publicKey) => Mac(secret, $"daprtrain-join\n{job}\n{member}\n{publicKey}");

    public static string ServerProof(string secret, string job, int generation, string publicKey) => Mac(secret, $"daprtrain-server\n{job}\n{generation}\n{publicKey}");

    public static string LeaveProof(NodeKey key, string job, string member, long version) => Convert.ToBase64String(key.Sign(LeaveStatement(job, member, version)));

    /// <summary>Null when the join may proceed; otherwise why it may not.</summary>
    public string? CheckJoin(string job, string member, string? publicKey, string? proof)
    {
        if (!Admits(member)) return $"'{Shorten(member)}' is not one of the job's workers";
        if (PublicKeys.TryImport(publicKey, out string? keyProblem) is not { } key) return $"join of {member} registers no valid public key ({keyProblem})";
        key.Dispose();
        return Matches(proof, $"daprtrain-join\n{job}\n{member}\n{publicKey}") ? null : $"join of {member} without a valid proof of the job's secret";
    }

    public string? CheckServer(string job, int generation, string? publicKey, string? proof)
    {
        if (PublicKeys.TryImport(publicKey, out string? keyProblem) is not { } key) return $"the parameter server registers no valid public key ({keyProblem})";
        key.Dispose();
        return Matches(proof, $"daprtrain-server\n{job}\n{generation}\n{publicKey}") ? null : "parameter server registration without a valid proof of the job's secret";
    }

    /// <summary>A leave signed by the member's registered key over the version it leaves from.</summary>
    public static string? CheckLeave(string job, string member, long version, string? registeredKey, string? signature)
    {
        if (registeredKey is null) return $"{member} has no registered key to sign its leave with";
        return SignedBy(registeredKey, LeaveStatement(job, member, version), signature) switch
        {
            Signed.Yes => null,
            Signed.NotBase64 => $"leave of {member}: the signature is not base64",
            _ => $"leave of {member} is not signed by {member}'s registered key over view version {version}",
        };
    }

    private static byte[] LeaveStatement(string job, string member, long version) => Encoding.UTF8.GetBytes($"daprtrain-leave\n{job}\n{member}\n{version}");

    public static string HeartbeatProof(NodeKey key, string job, string member, long sequence) => Convert.ToBase64String(key.Sign(HeartbeatStatement(job, member, sequence)));

    /// <summary>
    /// A heartbeat signed by the member's registered key over its sequence number (at least 1). Verified with the key kept
    /// imported, as the round calls are (<see cref="CheckCall"/>): a heartbeat comes from every member every period.
    /// </summary>
    public string? CheckHeartbeat(string job, string member, long sequence, string? registeredKey, string? signature)
    {
        if (sequence < 1) return $"heartbeat of {member} without a sequence number (got {sequence})";
        // An ECDSA P-256 signature is 64 bytes (88 characters of base64); anything much longer is not one, and is not decoded.
        if (signature is null || signature.Length > 512) return $"heartbeat {sequence} of {member} carries no signature of a registered key";
        if (registeredKey is null) return $"{member} has no registered key to sign its heartbeats with";
        if (FromBase64(signature) is not { } decoded) return $"heartbeat of {member}: the signature is not base64";
        return Verified(registeredKey, HeartbeatStatement(job, member, sequence), decoded) ? null : $"heartbeat {sequence} of {member} is not signed by {member}'s registered key";
    }

    private static byte[] HeartbeatStatement(string job, string member, long sequence) => Encoding.UTF8.GetBytes($"daprtrain-heartbeat\n{job}\n{member}\n{sequence}");

    /// <summary>
    /// A round call (<see cref="SignedCall"/>) signed by its caller's registered key; null when it is, else why not. The
    /// members' keys are kept imported (importing one costs about as much as verifying with it, and every member's report,
    /// every poll of an open round and every weight hash is checked), at most <see cref="MaxImportedKeys"/> of them.
    /// </summary>
    public string? CheckCall(SignedCall call, string? registeredKey, string? signature)
    {
        string caller = Shorten(call.Caller);
        // As for heartbeats: an ECDSA P-256 signature is 88 characters of base64; a much longer string is not one and is not decoded.
        if (string.IsNullOrEmpty(signature) || signature.Length > 512) return $"{call.Name} of {caller} carries no signature of a registered key";
        if (registeredKey is null) return $"{caller} has no registered key to sign its {call.Name} with";
        if (FromBase64(signature) is not { } decoded) return $"{call.Name} of {caller}: the signature is not base64";
        return Verified(registeredKey, call.Bytes(), decoded) ? null : $"{call.Name} of {caller} is not signed by {caller}'s registered key";
    }

    private static byte[]? FromBase64(string text)
    {
        byte[] bytes = new byte[text.Length * 3 / 4 + 3];
        return Convert.TryFromBase64String(text, bytes, out int written) ? bytes[..written] : null;
    }

    /// <summary>Keys kept imported: far above a job's members and server (Job:Workers is at most 64), and each registration's once.</summary>
    public const int MaxImportedKeys = 256;

    private readonly Dictionary<string, ECDsa> _imported = new(StringComparer.Ordinal);
    private readonly Lock _importing = new();

    private bool Verified(string registeredKey, byte[] statement, byte[] signature)
    {
        // One coordinator calls at a time (an actor's turn, the in-process coordinator's lock); the lock is for anyone else.
        lock (_importing)
        {
            if (!_imported.TryGetValue(registeredKey, out var key))
            {
                // Registered keys were checked at their join; one that is not a P-256 key verifies nothing.
                if (PublicKeys.TryImport(registeredKey, out _) is not { } imported) return false;
                if (_imported.Count >= MaxImportedKeys)
                {
                    foreach (var old in _imported.Values) old.Dispose();
                    _imported.Clear();
                }
                _imported[registeredKey] = key = imported;
            }
            return PublicKeys.Verify(key, statement, signature);
        }
    }

    private enum Signed
    {
        Yes,
        No,
        NotBase64,
    }

    /// <summary>Whether <paramref name="signature"/> (base64) is the registered key's signature over <paramref name="statement"/>.</summary>
    private static Signed SignedBy(string registeredKey, byte[] statement, string? signature)
    {
        using var key = PublicKeys.TryImport(registeredKey, out _);
        byte[] decoded;
        try
        {
            decoded = Convert.FromBase64String(signature ?? "");
        }
        catch (FormatException)
        {
            return Signed.NotBase64;
        }
        return key is not null && PublicKeys.Verify(key, statement, decoded) ? Signed.Yes : Signed.No;
    }

    private bool Matches(string? proof, string statement)
    {
        byte[] presented;
        try
        {
            presented = Convert.FromBase64String(proof ?? "");
        }
        catch (FormatException)
        {
            return false;
        }
        return CryptographicOperations.FixedTimeEquals(presented, HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes(statement)));
    }

    private static string Mac(string secret, string statement) => Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(statement)));

    private static string Shorten(string member) => member.Length <= 64 ? member : member[..64] + "...";
}

/// <summary>What a node proves itself with: its key pair and (in a job with admission) the job's secret.</summary>
/// <remarks>A class, not a record: it counts its heartbeats, reports and sync requests, and a copy (or value equality) would split or compare those counts.</remarks>
public sealed class MemberIdentity(NodeKey key, string? secret)
{
    public NodeKey Key { get; } = key;

    public string? Secret { get; } = secret;

    public string JoinProof(string job, string member) => Secret is null ? "" : JobAdmission.JoinProof(Secret, job, member, Key.PublicKey);

    public string ServerProof(string job, int generation) => Secret is null ? "" : JobAdmission.ServerProof(Secret, job, generation, Key.PublicKey);

    public string LeaveProof(string job, string member, long version) => JobAdmission.LeaveProof(Key, job, member, version);

    private long _heartbeats;
    private long _reports;
    private long _syncRequests;

    /// <summary>The key's signature over a round call (base64), as the coordinator checks it (<see cref="JobAdmission.CheckCall"/>).</summary>
    public string Sign(SignedCall call) => Convert.ToBase64String(Key.Sign(call.Bytes()));

    /// <summary>The next report's sequence number (reports of one member are sent one at a time, by its round loop).</summary>
    public long NextReport() => Interlocked.Increment(ref _reports);

    /// <summary>The next sync request's sequence number (a counter of its own: see <see cref="SignedCall"/>).</summary>
    public long NextSyncRequest() => Interlocked.Increment(ref _syncRequests);

    /// <summary>The next heartbeat of this identity: a rising sequence number and the key's signature over it.</summary>
    public (long Sequence, string Signature) NextHeartbeat(string job, string member)
    {
        long sequence = Interlocked.Increment(ref _heartbeats);
        return (sequence, JobAdmission.HeartbeatProof(Key, job, member, sequence));
    }
}
