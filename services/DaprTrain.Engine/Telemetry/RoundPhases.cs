using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace DaprTrain.Engine.Telemetry;

/// <summary>What a node's round spends its wall time on (issue 16: where a Dapr round's time goes).</summary>
public enum RoundPhase
{
    /// <summary>Forward and backward pass (or the serverless fan-out that computes them elsewhere).</summary>
    Compute,

    /// <summary>Making the messages: sealing, signing or compressing a gradient, the server's weights message, chunking.</summary>
    Encode,

    /// <summary>Handing the chunks to the sidecar (the gRPC publish calls).</summary>
    Publish,

    /// <summary>Waiting for peers' contributions or the server's weights (polls included; deliveries are handled meanwhile on other threads).</summary>
    Wait,

    /// <summary>Aggregating the round's contributions (decoding and checking them happens on delivery, see <see cref="RoundPhases.OffPath"/>).</summary>
    Aggregate,

    /// <summary>The optimizer step.</summary>
    Apply,

    /// <summary>Calls to the coordinator actor on the round's path: view refresh, report and agreement, weight comparison, sync flags, joins.</summary>
    Coordinator,

    /// <summary>Capturing and writing a checkpoint to the state store (or reading one to synchronise).</summary>
    Checkpoint,

    /// <summary>The rest of the round: what no phase above names (locks, logging, the loop itself). Derived: wall minus the phases.</summary>
    Other,
}

/// <summary>
/// Per-phase timing of one node's rounds. The round loop opens a scope per phase (<see cref="Time"/>); a scope opened
/// inside another (a coordinator call inside a wait that polls it, a publish inside a checkpoint) takes its time from
/// the outer one, so no millisecond is counted twice and the phases of a round never add up to more than its wall time.
/// Only the round's own flow counts: <see cref="RunAsync"/> marks it, and scopes opened elsewhere (the heartbeat timer,
/// delivery handlers) go to <see cref="OffPath"/> buckets instead, which overlap the round and are reported apart.
/// A round is what <see cref="CompleteRound"/> closes: its wall time runs from the previous completion (or the first
/// scope) to this one, and an attempt that did not complete (retried, the node resynchronised) folds into the next.
/// Every completed round records each phase on the project's Meter (<see cref="TrainingMetrics.RoundPhaseTime"/>, tagged
/// with node and phase) and adds it to an in-process summary (<see cref="Snapshot"/>, the node's /status).
/// </summary>
public sealed class RoundPhases(string node, TimeProvider? time = null)
{
    private static readonly RoundPhase[] Measured = [.. Enum.GetValues<RoundPhase>().Where(p => p != RoundPhase.Other)];
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly AsyncLocal<Scope?> _open = new();
    private readonly AsyncLocal<bool> _onPath = new();
    private readonly Lock _gate = new();
    private readonly double[] _current = new double[Measured.Length + 1];
    private readonly double[] _sum = new double[Measured.Length + 1];
    private readonly Dictionary<string, (long Count, double Ms)> _offPath = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Count, double Ms)> _details = new(StringComparer.Ordinal);
    private long _roundStarted = -1;
    private long _rounds;
    private double _wallMs;
    private string _node = node;

    /// <summary>The node's id as the Meter tags it (set once the node knows it, before its first round).</summary>
    public string Node
    {
        get => _node;
        set => _node = value;
    }

    /// <summary>
    /// Runs one attempt at a round as the round's flow: phases timed inside it (and in what it calls) count toward the
    /// round. Code that runs beside it (timers, delivery handlers) does not inherit the mark unless started inside.
    /// </summary>
    public async Task RunAsync(Func<Task> attempt)
    {
        _onPath.Value = true;
        StartClock();
        try
        {
            await attempt();
        }
        finally
        {
            _onPath.Value = false;
        }
    }

    /// <summary>
    /// One attempt at a round as <see cref="RunAsync(Func{Task})"/> does, then closes the round when it completed one:
    /// when <paramref name="appliedRound"/> moved on.
    /// </summary>
    public async Task RunAsync(Func<Task> attempt, Func<long> appliedRound)
    {
        long before = appliedRound();
        await RunAsync(attempt);
        if (appliedRound() > before) CompleteRound();
    }

    /// <summary>
    /// A phase from now until the scope is disposed. On the round's flow it counts toward the round; elsewhere it is an
    /// off-path figure under the phase's name (a heartbeat on its timer, for instance).
    /// </summary>
    /// <param name="detail">What this is within the phase ("GetView", "chunks"): counted apart as well, on the path or off it.</param>
    public Scope Time(RoundPhase phase, string? detail = null)
    {
        if (phase == RoundPhase.Other) throw new ArgumentException("'other' is what no phase covers; it is not timed", nameof(phase));
        var outer = _open.Value;
        long now = _time.GetTimestamp();
        outer?.Pause(now);
        var scope = new Scope(this, phase, detail, outer, now, _onPath.Value);
        _open.Value = scope;
        return scope;
    }

    /// <summary>Moves <paramref name="ms"/> of the current round from one phase to another (a node's own split of a call timed whole, such as its optimizer step inside an apply).</summary>
    public void Move(RoundPhase from, RoundPhase to, double ms)
    {
        if (ms <= 0 || !_onPath.Value) return;
        lock (_gate)
        {
            double moved = Math.Min(ms, _current[(int)from]);
            _current[(int)from] -= moved;
            _current[(int)to] += moved;
        }
    }

    /// <summary>A named figure inside the round's phases (on its path) or beside it (elsewhere): count and milliseconds, not added to any phase.</summary>
    public void RecordDetail(string what, double ms) => Count(_onPath.Value ? _details : _offPath, what, ms);

    /// <summary>Work off the round's path, under a name of its own (a delivery handled, a heartbeat on its timer): count and milliseconds.</summary>
    public void RecordOffPath(string what, double ms) => Count(_offPath, what, ms);

    private void Count(Dictionary<string, (long Count, double Ms)> figures, string what, double ms)
    {
        lock (_gate)
        {
            var (count, total) = figures.GetValueOrDefault(what);
            figures[what] = (count + 1, total + ms);
        }
    }

    /// <summary>Closes a completed round: its wall time since the previous completion, every phase recorded (zero included) and summed.</summary>
    public void CompleteRound()
    {
        long now = _time.GetTimestamp();
        var open = _open.Value;
        // A scope still open (the caller closes a round from inside one) contributes what it has so far.
        open?.Pause(now);
        double[] phases;
        double wall;
        lock (_gate)
        {
            if (_roundStarted < 0) _roundStarted = now;
            wall = _time.GetElapsedTime(_roundStarted, now).TotalMilliseconds;
            _roundStarted = now;
            double named = 0;
            for (int i = 0; i < Measured.Length; i++) named += _current[i];
            _current[(int)RoundPhase.Other] = Math.Max(0, wall - named);
            phases = (double[])_current.Clone();
            for (int i = 0; i < _sum.Length; i++) _sum[i] += _current[i];
            Array.Clear(_current);
            _rounds++;
            _wallMs += wall;
        }
        var tags = TrainingMetrics.Node(_node);
        TrainingMetrics.RoundDuration.Record(wall, tags);
        foreach (var phase in Enum.GetValues<RoundPhase>())
        {
            var tagged = tags;
            tagged.Add("daprtrain.phase", Name(phase));
            TrainingMetrics.RoundPhaseTime.Record(phases[(int)phase], tagged);
        }
    }

    /// <summary>The summary so far: completed rounds, their wall time, each phase's total, the off-path figures.</summary>
    public PhaseSummary Snapshot()
    {
        lock (_gate)
        {
            var phases = Enum.GetValues<RoundPhase>().Select(p => new PhaseTotal(Name(p), _rounds, _sum[(int)p])).ToList();
            var details = _details.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => new PhaseTotal(o.Key, o.Value.Count, o.Value.Ms)).ToList();
            var offPath = _offPath.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => new PhaseTotal(o.Key, o.Value.Count, o.Value.Ms)).ToList();
            return new PhaseSummary(_node, _rounds, _wallMs, phases, details, offPath);
        }
    }

    /// <summary>The phase's name on the Meter and in /status: lower case.</summary>
    public static string Name(RoundPhase phase) => phase.ToString().ToLowerInvariant();

    private void StartClock()
    {
        lock (_gate)
        {
            if (_roundStarted < 0) _roundStarted = _time.GetTimestamp();
        }
    }

    private void Add(RoundPhase phase, double ms)
    {
        if (ms <= 0) return;
        lock (_gate) _current[(int)phase] += ms;
    }

    /// <summary>One phase's time; dispose it to stop the clock. Not to be shared between flows.</summary>
    public sealed class Scope : IDisposable
    {
        private readonly RoundPhases _owner;
        private readonly RoundPhase _phase;
        private readonly string? _detail;
        private readonly Scope? _outer;
        private readonly bool _onPath;
        private long _since;
        private double _ms;
        private bool _disposed;

        internal Scope(RoundPhases owner, RoundPhase phase, string? detail, Scope? outer, long since, bool onPath)
        {
            _owner = owner;
            _phase = phase;
            _detail = detail;
            _outer = outer;
            _since = since;
            _onPath = onPath;
        }

        /// <summary>Books the time so far to the phase and restarts the clock (an inner scope starts, or the round closes).</summary>
        internal void Pause(long now)
        {
            if (_disposed) return;
            double ms = _owner._time.GetElapsedTime(_since, now).TotalMilliseconds;
            _since = now;
            _ms += ms;
            if (_onPath) _owner.Add(_phase, ms);
        }

        public void Dispose()
        {
            if (_disposed) return;
            long now = _owner._time.GetTimestamp();
            Pause(now);
            _disposed = true;
            string name = _detail is null ? Name(_phase) : Name(_phase) + " " + _detail;
            if (!_onPath) _owner.RecordOffPath(name, _ms);
            else if (_detail is not null) _owner.Count(_owner._details, name, _ms);
            _owner._open.Value = _outer;
            // The outer phase goes on from here.
            if (_outer is not null) _outer._since = now;
        }
    }
}

/// <summary>One phase's total over a node's completed rounds (count: rounds recorded), or an off-path figure (count: occurrences).</summary>
public sealed record PhaseTotal(string Phase, long Count, double Ms);

/// <summary>A node's round breakdown so far, as /status serves it and the end-of-job table prints it.</summary>
/// <param name="Details">Named parts of phases on the round's path (such as each coordinator method): occurrences and milliseconds, inside the phases' figures.</param>
/// <param name="OffPath">Work beside the round (delivery handling, heartbeats on their timer): occurrences and milliseconds, not in the round's figures.</param>
public sealed record PhaseSummary(string Node, long Rounds, double WallMs, IReadOnlyList<PhaseTotal> Phases, IReadOnlyList<PhaseTotal> Details, IReadOnlyList<PhaseTotal> OffPath)
{
    /// <summary>The share of the rounds' wall time the named phases account for (everything but "other"), 0..1.</summary>
    public double Accounted => WallMs <= 0 ? 0 : Math.Min(1, Phases.Where(p => p.Phase != RoundPhases.Name(RoundPhase.Other)).Sum(p => p.Ms) / WallMs);

    /// <summary>One table: mean ms per round and share of the round for each phase, then the off-path figures and the accounted share.</summary>
    public string Table()
    {
        var c = CultureInfo.InvariantCulture;
        double perRound = Rounds == 0 ? 0 : WallMs / Rounds;
        var text = new StringBuilder();
        text.Append(c, $"{Node}: where a round's time went, {Rounds} rounds, {perRound:F1} ms a round\n");
        text.Append("  phase          ms/round   share\n");
        foreach (var phase in Phases)
        {
            double mean = Rounds == 0 ? 0 : phase.Ms / Rounds;
            text.Append(c, $"  {phase.Phase,-12} {mean,10:F2} {(WallMs <= 0 ? 0 : 100 * phase.Ms / WallMs),6:F1}%\n");
        }
        foreach (var detail in Details)
        {
            text.Append(c, $"  of which {detail.Phase}: {detail.Count} times, {(detail.Count == 0 ? 0 : detail.Ms / detail.Count):F2} ms each ({(Rounds == 0 ? 0 : detail.Ms / Rounds):F2} ms a round)\n");
        }
        foreach (var off in OffPath)
        {
            text.Append(c, $"  off the round's path: {off.Phase}, {off.Count} times, {(off.Count == 0 ? 0 : off.Ms / off.Count):F2} ms each ({(Rounds == 0 ? 0 : off.Ms / Rounds):F2} ms a round)\n");
        }
        text.Append(c, $"  accounted: {100 * Accounted:F0}% of {perRound:F0} ms");
        return text.ToString();
    }
}
