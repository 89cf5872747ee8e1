namespace DaprTrain.Coordination.Progress;

/// <summary>
/// Turns consecutive membership views into progress events: who joined, whose lease expired, who left, shards that
/// moved, a new checkpoint writer. Each event carries the whole new view, so a receiver that missed one is right
/// again at the next. Used by the embedded job and by the coordinator actor, so both tell membership alike.
/// Not thread-safe: one owner calls it (the job's driver, or the actor, whose calls are serialised by its lock).
/// </summary>
public sealed class MembershipChanges
{
    private MembershipView? _last;

    /// <summary>The events from the last view seen to <paramref name="view"/>; none when nothing changed.</summary>
    public IReadOnlyList<ProgressEvent> Next(MembershipView view)
    {
        var before = _last;
        _last = view;
        var members = view.Members.Order(StringComparer.Ordinal).ToList();
        var owners = Owners(view);
        var events = new List<ProgressEvent>();
        void Change(string change, string? node) =>
            events.Add(ProgressEvent.Membership(change, node, view.Generation, members, view.CheckpointWriter, owners));

        var previous = before?.Members ?? [];
        foreach (string node in view.Members.Except(previous).Order(StringComparer.Ordinal)) Change("joined", node);
        foreach (string node in previous.Except(view.Members).Order(StringComparer.Ordinal))
        {
            Change(view.Expired.Contains(node) ? "lease-expired" : "left", node);
        }
        if (before is null) return events;
        if (!owners.SequenceEqual(Owners(before))) Change("shards-moved", null);
        if (view.CheckpointWriter != before.CheckpointWriter) Change("checkpoint-writer", view.CheckpointWriter);
        if (view.Generation != before.Generation && events.Count == 0) Change("view", null);
        return events;
    }

    private static List<string> Owners(MembershipView view) => [.. view.ShardOwners.OrderBy(p => p.Key).Select(p => p.Value)];
}
