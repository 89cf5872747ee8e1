using System.Diagnostics;
using DaprTrain.Engine.Telemetry;

namespace DaprTrain.Simulation.Accounting;

/// <summary>
/// Everything a run accounts for, in one place the round code calls: busy time per node, exchange wall time, bytes and
/// messages per node and per round, alive time. Each figure is also recorded on the project's <see cref="TrainingMetrics"/>
/// instruments, under the names the Dapr services use.
/// </summary>
public sealed class JobAccounting
{
    private readonly Dictionary<string, NodeMetrics> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _roundBytes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _aliveSince = new(StringComparer.Ordinal);
    private double _exchangeMs;

    /// <summary>Bytes sent and received in the current round, all nodes together.</summary>
    public long RoundBytesMoved { get; private set; }

    public IReadOnlyList<NodeMetrics> Nodes => [.. _nodes.Values.OrderBy(n => n.Node, StringComparer.Ordinal)];

    public NodeMetrics Node(string node)
    {
        if (!_nodes.TryGetValue(node, out var metrics)) _nodes[node] = metrics = new NodeMetrics(node);
        return metrics;
    }

    public void StartRound()
    {
        _roundBytes.Clear();
        RoundBytesMoved = 0;
    }

    /// <summary>The exchange wall time accumulated since the last call, which starts the count again.</summary>
    public double TakeExchangeMs()
    {
        double ms = _exchangeMs;
        _exchangeMs = 0;
        return ms;
    }

    public long RoundBytes(string node) => _roundBytes.GetValueOrDefault(node);

    public void Sent(string node, int bytes) => CountMessage(node, bytes, sent: true);

    public void Received(string node, int bytes) => CountMessage(node, bytes, sent: false);

    public void Busy(string node, double ms)
    {
        Node(node).BusyMs += ms;
        TrainingMetrics.BusyTime.Record(ms, TrainingMetrics.Node(node));
    }

    /// <summary>Wall time of exchange work (not compute, not optimizer steps).</summary>
    public void Exchange(double ms)
    {
        _exchangeMs += ms;
        TrainingMetrics.ExchangeTime.Record(ms);
    }

    /// <summary>Times a block of exchange work: <c>using (accounting.TimeExchange()) { ... }</c>.</summary>
    public ExchangeTimer TimeExchange() => new(this);

    public void Up(string node, double nowMs)
    {
        Node(node);
        _aliveSince[node] = nowMs;
    }

    public void Down(string node, double nowMs)
    {
        if (_aliveSince.Remove(node, out double since)) Node(node).AliveMs += nowMs - since;
    }

    /// <summary>Every node's figures with the alive time of the nodes still up counted to <paramref name="nowMs"/>: a running cost.</summary>
    public IReadOnlyList<NodeMetrics> NodesSoFar(double nowMs) => [.. Nodes.Select(n => new NodeMetrics(n.Node)
    {
        BusyMs = n.BusyMs,
        AliveMs = n.AliveMs + (_aliveSince.TryGetValue(n.Node, out double since) ? nowMs - since : 0),
        Rounds = n.Rounds,
    })];

    /// <summary>Closes the alive time of every node still up at the end of the run.</summary>
    public void EndOfRun(double nowMs)
    {
        foreach (var node in _aliveSince.Keys.ToList()) Down(node, nowMs);
    }

    private void CountMessage(string node, int bytes, bool sent)
    {
        var m = Node(node);
        var tags = TrainingMetrics.Node(node);
        if (sent)
        {
            m.BytesSent += bytes;
            m.MessagesSent++;
            TrainingMetrics.BytesSent.Add(bytes, tags);
            TrainingMetrics.MessagesSent.Add(1, tags);
        }
        else
        {
            m.BytesReceived += bytes;
            m.MessagesReceived++;
            TrainingMetrics.BytesReceived.Add(bytes, tags);
            TrainingMetrics.MessagesReceived.Add(1, tags);
        }
        _roundBytes[node] = _roundBytes.GetValueOrDefault(node) + bytes;
        RoundBytesMoved += bytes;
    }

    public readonly struct ExchangeTimer(JobAccounting accounting) : IDisposable
    {
        private readonly long _started = Stopwatch.GetTimestamp();

        public void Dispose() => accounting.Exchange(Stopwatch.GetElapsedTime(_started).TotalMilliseconds);
    }
}
