namespace DaprTrain.Engine.Nodes;

/// <summary>What a node did with the messages it was handed.</summary>
public sealed class NodeCounters
{
    private readonly Dictionary<string, int> _rejected = new(StringComparer.Ordinal);

    public int Applied { get; private set; }

    public int Duplicates { get; private set; }

    /// <summary>Gradients that arrived after their round closed (slow senders, redeliveries): discarded.</summary>
    public int Late { get; private set; }

    public IReadOnlyDictionary<string, int> Rejected => _rejected;

    /// <summary>Rounds a robust aggregator had fewer contributions than its f needs and took their median instead.</summary>
    public int AggregationFallbacks { get; private set; }

    public void CountFallback() => AggregationFallbacks++;

    public void CountApplied() => Applied++;

    public void CountDuplicate() => Duplicates++;

    public void CountLate() => Late++;

    public void CountRejected(string category) => _rejected[category] = _rejected.GetValueOrDefault(category) + 1;
}
