namespace DaprTrain.Coordination;

/// <summary>Who is in the job now, who owns which data shard, and who writes checkpoints.</summary>
public sealed record MembershipView(
    long Version,
    IReadOnlyList<string> Members,
    IReadOnlyDictionary<int, string> ShardOwners,
    string? CheckpointWriter,
    IReadOnlyList<string> Expired,
    IReadOnlyList<string>? SyncRequests = null,
    IReadOnlyDictionary<string, string>? Keys = null,
    int Generation = 0)
{
    /// <summary>
    /// The public keys (base64 SubjectPublicKeyInfo) registered by the members and, under "ps", by the parameter server of
    /// <see cref="Generation"/>: a node accepts a message only when it is signed by the key this view names for its sender.
    /// </summary>
    public IReadOnlyDictionary<string, string> PublicKeys => Keys ?? EmptyKeys;

    private static readonly IReadOnlyDictionary<string, string> EmptyKeys = new Dictionary<string, string>();

    /// <summary>
    /// The coordinator's public key for its round decisions (base64 SubjectPublicKeyInfo, <see cref="Security.DecisionKey"/>),
    /// where it signs them (the Dapr actor); null in process. With it a peer takes a decision another peer relays.
    /// </summary>
    public string? DecisionKey { get; init; }

    /// <summary>Members that joined a running job and wait for a peer to write the current state for them.</summary>
    public IReadOnlyList<string> PendingSyncs => SyncRequests ?? [];

    public IReadOnlyList<int> ShardsOf(string member) =>
        ShardOwners.Where(p => p.Value == member).Select(p => p.Key).OrderBy(s => s).ToList();
}

/// <summary>
/// The replicas' weight hashes after a round, compared: complete once every member that does not wait for a state has
/// reported; <see cref="Diverged"/> are the members whose hash differs from the most common one (ties: the lowest hash).
/// </summary>
public sealed record WeightCheck(long Round, bool Complete, ulong? Majority, IReadOnlyList<string> Diverged)
{
    public static WeightCheck None { get; } = new(0, false, null, []);
}

/// <summary>The set of senders every reporting member holds for a round: what all replicas aggregate.</summary>
/// <param name="ViewVersion">
/// The coordinator's <see cref="MembershipView.Version"/> when it decided the round (-1: unknown). Every replica takes the
/// same decision, so all of them learn of a changed view from the same round: a node whose view has another version
/// fetches the view before its next round; one whose view has this version holds the current view (issue 16).
/// </param>
public sealed record RoundDecision(int Generation, long Round, IReadOnlyList<string> Included, IReadOnlyList<string> Reporters, long ViewVersion = -1)
{
    /// <summary>
    /// The coordinator's signature over the decision (<see cref="Security.SignedCall.Decision"/>, <see cref="Security.DecisionKey"/>)
    /// where it signs them; null in process. What lets the peer whose report closed the round hand it on (issue 16).
    /// </summary>
    public byte[]? Signature { get; init; }
}
