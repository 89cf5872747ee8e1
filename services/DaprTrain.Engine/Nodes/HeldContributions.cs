using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Nodes;

/// <summary>
/// The gradients (or slices) a node holds for its open and next round, by round and sender. A sender the node's
/// membership view does not name yet is held apart instead of dropped: its message may simply have overtaken the
/// view that names it (a peer starts round 1 the moment the coordinator admits the last worker, before that worker
/// has heard it is in). It counts once a view names the sender and is forgotten with its round otherwise. At most
/// <see cref="MaxStrangersPerRound"/> strangers are held per round, so senders that are no members cannot fill memory.
/// <para>
/// Every contribution it lets go of (its round forgotten, a duplicate stranger, a replaced own gradient) goes to
/// <c>release</c>: values decoded into a pooled array go back to the pool there, as nothing else holds them.
/// </para>
/// </summary>
internal sealed class HeldContributions(Action<ReadOnlyMemory<float>> release)
{
    public const int MaxStrangersPerRound = 8;

    private readonly Dictionary<(long Round, string Sender), Contribution> _members = [];
    private readonly Dictionary<(long Round, string Sender), Contribution> _strangers = [];
    private HashSet<string> _memberSet = new(StringComparer.Ordinal);

    public enum Outcome { Held, HeldApart, Duplicate, TooManyStrangers }

    /// <summary>Takes a new membership view; strangers it names now count.</summary>
    public void SetMembers(IEnumerable<string> members)
    {
        _memberSet = new HashSet<string>(members, StringComparer.Ordinal);
        foreach (var key in _strangers.Keys.Where(k => _memberSet.Contains(k.Sender)).ToList())
        {
            if (!_members.TryAdd(key, _strangers[key])) release(_strangers[key].Values);
            _strangers.Remove(key);
        }
    }

    /// <summary>The node's own contribution: it always counts, and a recomputed one replaces the earlier.</summary>
    public void PutOwn(long round, Contribution own)
    {
        if (_members.TryGetValue((round, own.Sender), out var earlier)) release(earlier.Values);
        _members[(round, own.Sender)] = own;
    }

    public Outcome Hold(long round, Contribution contribution)
    {
        var key = (round, contribution.Sender);
        if (_members.ContainsKey(key) || _strangers.ContainsKey(key)) return Outcome.Duplicate;
        if (_memberSet.Contains(contribution.Sender))
        {
            _members.Add(key, contribution);
            return Outcome.Held;
        }
        if (_strangers.Keys.Count(k => k.Round == round) >= MaxStrangersPerRound) return Outcome.TooManyStrangers;
        _strangers.Add(key, contribution);
        return Outcome.HeldApart;
    }

    public bool Contains(long round, string sender) => _members.ContainsKey((round, sender));

    public bool TryGet(long round, string sender, out Contribution contribution) => _members.TryGetValue((round, sender), out contribution);

    /// <summary>The senders whose contribution to the round counts, in ordinal order.</summary>
    public IReadOnlyList<string> Senders(long round) =>
        _members.Keys.Where(k => k.Round == round).Select(k => k.Sender).OrderBy(s => s, StringComparer.Ordinal).ToList();

    public IReadOnlyList<Contribution> Of(long round) =>
        _members.Where(p => p.Key.Round == round).OrderBy(p => p.Key.Sender, StringComparer.Ordinal).Select(p => p.Value).ToList();

    public int StrangersOf(long round) => _strangers.Keys.Count(k => k.Round == round);

    /// <summary>Forgets one sender's contribution to a round (held or held apart).</summary>
    public void Forget(long round, string sender)
    {
        if (_members.Remove((round, sender), out var held)) release(held.Values);
        if (_strangers.Remove((round, sender), out var apart)) release(apart.Values);
    }

    /// <summary>Forgets every round up to and including <paramref name="round"/>: they are closed.</summary>
    public void ForgetThrough(long round)
    {
        foreach (var key in _members.Keys.Where(k => k.Round <= round).ToList()) Forget(key.Round, key.Sender);
        foreach (var key in _strangers.Keys.Where(k => k.Round <= round).ToList()) Forget(key.Round, key.Sender);
    }

    public void Clear()
    {
        foreach (var held in _members.Values) release(held.Values);
        foreach (var apart in _strangers.Values) release(apart.Values);
        _members.Clear();
        _strangers.Clear();
    }
}
