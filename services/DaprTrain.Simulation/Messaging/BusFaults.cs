namespace DaprTrain.Simulation.Messaging;

/// <summary>
/// What the in-process broker does to deliveries, all decided by a seeded generator so a run can be replayed.
/// Drop: the delivery is lost and the broker redelivers it after <see cref="RedeliverAfterMs"/> (at-least-once;
/// by then the round is usually closed and the copy is stale). Duplicate: delivered twice, the copy anywhere up to
/// <see cref="RedeliverAfterMs"/> later (often in a later round, so also stale). Delay: delivered
/// <see cref="DelayMs"/> later. Reorder: deliveries due close together arrive in random order.
/// </summary>
public sealed record BusFaults(
    double DropProbability = 0,
    double DuplicateProbability = 0,
    double DelayProbability = 0,
    double DelayMs = 0,
    bool Reorder = false,
    double RedeliverAfterMs = 2000)
{
    public static BusFaults None { get; } = new();

    public bool Any => DropProbability > 0 || DuplicateProbability > 0 || DelayProbability > 0 || Reorder;
}
