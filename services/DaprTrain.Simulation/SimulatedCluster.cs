using System.Diagnostics;
using DaprTrain.Coordination;
using DaprTrain.Engine.Aggregation;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Nodes;
using DaprTrain.Engine.Topologies;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Compute;
using DaprTrain.Simulation.Faults;
using DaprTrain.Simulation.Messaging;
using DaprTrain.Training.Data;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Simulation;

/// <summary>
/// The processes of one embedded job and what connects them: worker nodes, the parameter server, the coordinator, the
/// in-process broker, the virtual clock and the accounting. Rounds (<see cref="Rounds"/>) and recovery drive it; it knows
/// no topology beyond the round plan it was given.
/// </summary>
internal sealed class SimulatedCluster : IDisposable
{
    private readonly TrainingData _data;
    private readonly ILoggerFactory _loggers;
    private readonly MessageBufferPool _buffers = new();
    private readonly DecodedValuesPool? _decodedValues;
    private readonly HashSet<byte[]> _roundMessages = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, WorkerNode?> _workers = new(StringComparer.Ordinal);
    // One key per node id for the whole run: a simulated restart is the same node, and keeps the run's results what they
    // were before messages were signed (a new key would wait out the old lease, as a restarted service does).
    private readonly Dictionary<string, DaprTrain.Coordination.Security.MemberIdentity> _identities = new(StringComparer.Ordinal);
    private readonly long[][] _shards;
    private (double StartMs, double Ms) _computePhase = (double.NaN, 0);

    public SimulatedCluster(JobOptions options, TrainingData data, ILoggerFactory loggers)
    {
        Options = options;
        Plan = RoundPlans.For(options.Topology);
        Aggregator = options.ResolvedAggregator;
        _data = data;
        _loggers = loggers;
        Log = loggers.CreateLogger<EmbeddedJob>();
        Bus = new InProcessBus(options.Faults.Bus, options.Trainer.Seed) { OnDelivery = Accounting.Received };
        Coordinator = new InProcessCoordinator(new JobCoordinator(options.JobId, options.Workers, TimeSpan.FromMilliseconds(options.LeaseMs), Clock,
            workersWriteCheckpoints: options.Topology.WorkersWriteCheckpoints()));
        _shards = Sharding.Split(data.TrainIndices, data.Train.Labels, options.Workers, options.Trainer.Seed, options.Sharding);
        View = new MembershipView(0, [], new Dictionary<int, string>(), null, []);
        Compute = GradientCompute.For(options, loggers);
        // One pool for every node of the job: a round's arrays, given back by the nodes that forget it, carry the next round's
        // messages at any node. Workers x workers is a p2p round's worth (each node holds one per peer), the most in use at once.
        _decodedValues = options.PoolDecodedValues ? new DecodedValuesPool(maxPerLength: Math.Max(1, options.Workers * options.Workers)) : null;
    }

    public JobOptions Options { get; }

    public RoundPlan Plan { get; }

    /// <summary>The job's aggregation rule, resolved for its workers.</summary>
    public AggregationRule Aggregator { get; }

    public ILogger Log { get; }

    public VirtualClock Clock { get; } = new();

    public InProcessBus Bus { get; }

    public InProcessCoordinator Coordinator { get; }

    public JobAccounting Accounting { get; } = new();

    public GradientCompute Compute { get; }

    public MembershipView View { get; private set; }

    public ParameterServerNode? Server { get; private set; }

    /// <summary>The round every peer replica has applied (peer topologies).</summary>
    public long CommittedRound { get; set; }

    public long GradientsDropped { get; set; }

    public long MessageBuffersReused => _buffers.Reused;

    /// <summary>Received compressed messages decoded into an array an earlier message had (0 when pooling is off).</summary>
    public long DecodedArraysReused => _decodedValues?.Reused ?? 0;

    public TrainingData Data => _data;

    public IEnumerable<WorkerNode> LiveWorkers => _workers.Values.OfType<WorkerNode>().OrderBy(w => w.Id, StringComparer.Ordinal);

    public bool IsRunning(string worker) => _workers.GetValueOrDefault(worker) is not null;

    public WorkerNode Worker(string id) => _workers.GetValueOrDefault(id) ?? throw new InvalidOperationException($"{id} is not running");

    /// <summary>The round the job has completed: the server's under a parameter server, the peers' agreed round otherwise.</summary>
    public long CompletedRound => Plan.DecidedByPeers ? CommittedRound : Server?.AppliedRound ?? CommittedRound;

    public int Generation => Server?.Generation ?? 0;

    public bool InSync(WorkerNode worker) => Plan.DecidedByPeers
        ? worker.AppliedRound == CommittedRound
        : worker.AppliedRound == Server!.AppliedRound && worker.Generation == Server.Generation;

    /// <summary>The members that take part in the round: alive, in the view, and in step with the job.</summary>
    public List<WorkerNode> Participants() => [.. LiveWorkers.Where(w => View.Members.Contains(w.Id) && InSync(w))];

    public async Task RefreshViewAsync()
    {
        View = await Coordinator.GetViewAsync();
        foreach (var worker in LiveWorkers) worker.ApplyView(View, _shards);
        Server?.SetMembers(View.Members, View.PublicKeys);
    }

    /// <summary>The node's key, which it registers with the coordinator (null when the run does not sign).</summary>
    public DaprTrain.Coordination.Security.MemberIdentity? IdentityOf(string id)
    {
        if (!Options.SignMessages) return null;
        if (!_identities.TryGetValue(id, out var identity))
        {
            _identities[id] = identity = new DaprTrain.Coordination.Security.MemberIdentity(DaprTrain.Coordination.Security.NodeKey.Create(), null);
        }
        return identity;
    }

    /// <summary>The server registers its generation (and key) with the coordinator, and every node takes the new view.</summary>
    public async Task RegisterServerAsync()
    {
        await Coordinator.RegisterServerAsync(Server!.Generation, IdentityOf(ParameterServerNode.NodeId));
        await RefreshViewAsync();
    }

    public async Task StartWorkerAsync(string id)
    {
        var worker = new WorkerNode(id, Options.JobId, Options.Trainer, _data, _loggers.CreateLogger<WorkerNode>(), _buffers)
        {
            Aggregator = Aggregator,
            Attack = Options.Faults.AttackOf(id),
            Key = IdentityOf(id)?.Key,
            Compression = Options.Codec,
            DecodedValues = _decodedValues,
        };
        _workers[id] = worker;
        Accounting.Up(id, Clock.NowMs);
        foreach (var subscription in Plan.Subscriptions(id)) Bus.Subscribe(subscription.Topic, id, payload => subscription.Deliver(worker, payload));
        await Coordinator.JoinAsync(id, IdentityOf(id));
    }

    public void StopWorker(string id)
    {
        var worker = Worker(id);
        Bus.Unsubscribe(id);
        Accounting.Down(id, Clock.NowMs);
        Compute.Forget(id);
        worker.Dispose();
        _workers[id] = null;
    }

    public void StartServer()
    {
        Server = new ParameterServerNode(Options.JobId, Options.Trainer, _loggers.CreateLogger<ParameterServerNode>())
        {
            Aggregator = Aggregator,
            Key = IdentityOf(ParameterServerNode.NodeId)?.Key,
            DecodedValues = _decodedValues,
            WorkerCompression = Options.Codec,
        };
        Accounting.Up(ParameterServerNode.NodeId, Clock.NowMs);
        Bus.Subscribe(TopicNames.Gradients, ParameterServerNode.NodeId, Server.HandleGradient);
    }

    public void StopServer()
    {
        Bus.Unsubscribe(ParameterServerNode.NodeId);
        Accounting.Down(ParameterServerNode.NodeId, Clock.NowMs);
        Server!.Dispose();
        Server = null;
    }

    /// <summary>Computes one worker's gradient (on its own VM, or fanned out to functions) plus injected slowness; returns when it is ready.</summary>
    public async Task<double> ComputeAsync(WorkerNode worker, double start)
    {
        double computeMs = Compute.Run(worker, start);
        double slowMs = InjectedSlowMs(worker);
        double ready = start + computeMs + slowMs;
        _computePhase = _computePhase.StartMs == start ? (start, Math.Max(_computePhase.Ms, computeMs)) : (start, computeMs);
        Accounting.Busy(worker.Id, Compute.WorkerBusyMs(computeMs) + slowMs);
        Accounting.Node(worker.Id).Rounds++;
        Clock.SetForStep(ready);
        await Coordinator.HeartbeatAsync(worker.Id, IdentityOf(worker.Id));
        Clock.SetForStep(start);
        return ready;
    }

    /// <summary>
    /// ALIE's colluding attackers of the round, once every participant has computed: each replaces its gradient with one
    /// made from the honest participants' gradients (an omniscient attacker: it sees what the honest workers send this
    /// round, as colluders that eavesdrop on the topic could). n is the round's participants, f its colluders.
    /// </summary>
    public void Collude(IReadOnlyList<WorkerNode> colluders, IReadOnlyList<WorkerNode> participants)
    {
        var honest = participants.Where(w => !colluders.Contains(w)).Select(w => w.OwnGradient).ToList();
        foreach (var attacker in colluders)
        {
            if (honest.Count == 0)
            {
                Log.LogInformation("{Worker}: no honest gradient in round {Round} to collude against; it sends its own", attacker.Id, attacker.OpenRound);
                continue;
            }
            var watch = Stopwatch.StartNew();
            attacker.Collude(honest, participants.Count, colluders.Count);
            Accounting.Busy(attacker.Id, watch.Elapsed.TotalMilliseconds);
        }
    }

    /// <summary>
    /// When the round's gradients are normally all computed: the slowest participant's measured compute (on its VM, or
    /// its functions with their overheads and retries), injected slowness left out. A round's deadline counts from here,
    /// so whether a gradient makes its round depends on the faults of the run (slowness, lost and delayed messages, dead
    /// nodes), never on how busy the machine that measures the compute happens to be; and retried invocations change
    /// the time and the cost of a serverless round, not its gradients.
    /// </summary>
    /// <summary>The slowness the fault plan injects into <paramref name="worker"/>'s compute in its open round (modelled, so the same in every run of a seed).</summary>
    public double InjectedSlowMs(WorkerNode worker) => Options.Faults.NodeFaults
        .Where(f => f.Kind == NodeFaultKind.Slow && f.Node == worker.Id && f.Round <= worker.OpenRound)
        .Sum(f => f.DelayMs);

    /// <summary>
    /// When <paramref name="worker"/>'s gradient leaves: at the end of the compute phase (the slowest participant's measured
    /// compute) plus the slowness injected into it. Not at its own measured ready time: the phase's deadline counts from
    /// the same end, so whether a gradient is late then depends only on modelled quantities (the injected slowness, the
    /// hop, the faults on the wire), never on how busy the machine was (a hop longer than the deadline made it depend on
    /// the gap between a worker's measured compute and the slowest one's).
    /// </summary>
    public double SendMs(WorkerNode worker, double roundStartMs) => ComputePhaseEndMs(roundStartMs) + InjectedSlowMs(worker);

    public double ComputePhaseEndMs(double roundStartMs) => roundStartMs + (_computePhase.StartMs == roundStartMs ? _computePhase.Ms : 0);

    /// <summary>Publishes at virtual time <paramref name="at"/>; the message is in transit for one hop over its busiest link.</summary>
    public void Publish(string sender, string topic, byte[] payload, double at, long linkBytes)
    {
        if (sender != ParameterServerNode.NodeId) _roundMessages.Add(payload);
        // Pub/sub: the sender uploads once; the broker fans out. Unicast topics have one subscriber.
        Accounting.Sent(sender, payload.Length);
        Bus.Publish(topic, payload, at, Options.Network.HopMs(linkBytes), publisher: sender);
    }

    /// <summary>Publishes a worker's messages of one phase; its link carries all of them.</summary>
    public void Publish(string sender, IReadOnlyList<Outgoing> messages, double at)
    {
        long linkBytes = messages.Sum(m => (long)m.Payload.Length * m.Receivers);
        foreach (var message in messages) Publish(sender, message.Topic, message.Payload, at, linkBytes);
    }

    /// <summary>Delivers due messages in time order until <paramref name="complete"/> holds or the deadline passes; the clock ends at that moment.</summary>
    public void DeliverUntil(double deadline, Func<bool> complete)
    {
        using var _ = Accounting.TimeExchange();
        double reached = Clock.NowMs;
        while (!complete())
        {
            double? next = Bus.NextDue;
            if (next is null || next > deadline)
            {
                reached = deadline;
                break;
            }
            Bus.DeliverUntil(next.Value);
            reached = Math.Max(reached, next.Value);
        }
        Clock.AdvanceTo(Math.Max(Clock.NowMs, reached));
    }

    /// <summary>Each worker's step, timed; busy time for the worker, exchange time apart from its optimizer. Returns the slowest.</summary>
    public double TimeEach(IEnumerable<WorkerNode> workers, Action<WorkerNode> step)
    {
        double slowest = 0;
        foreach (var worker in workers)
        {
            var watch = Stopwatch.StartNew();
            double optimizerBefore = worker.OptimizerMs;
            step(worker);
            double ms = watch.Elapsed.TotalMilliseconds;
            Accounting.Exchange(ms - (worker.OptimizerMs - optimizerBefore));
            Accounting.Busy(worker.Id, ms);
            slowest = Math.Max(slowest, ms);
        }
        return slowest;
    }

    /// <summary>Time on the wire a worker's link was busy in this round, billed as busy time.</summary>
    public void AccountLinkTime(IEnumerable<WorkerNode> workers)
    {
        foreach (var worker in workers) Accounting.Busy(worker.Id, Options.Network.TransferMs(Accounting.RoundBytes(worker.Id)));
    }

    public void BroadcastWeights()
    {
        byte[] weights = Server!.WeightsMessage();
        Publish(ParameterServerNode.NodeId, TopicNames.Weights, weights, Clock.NowMs, weights.Length);
    }

    public void StartRound()
    {
        Accounting.StartRound();
        // Messages of a round that ended early (a rollback) or could not be released are left to the collector.
        _roundMessages.Clear();
    }

    /// <summary>
    /// Gives the round's worker messages back to the pool once nothing can read them: every live node has applied
    /// the round (so none holds a contribution or slice of it) and the broker holds no delayed, duplicated or
    /// retried copy. Otherwise they stay with the collector, which frees them when the last reader lets go.
    /// </summary>
    public void ReleaseRoundMessages(long round)
    {
        bool everyonePast = LiveWorkers.All(w => w.AppliedRound >= round) && (Server is null || Server.AppliedRound >= round);
        if (everyonePast)
        {
            foreach (var message in _roundMessages.Where(m => !Bus.IsQueued(m))) _buffers.Return(message);
        }
        _roundMessages.Clear();
    }

    public Training.Trainer ReferenceTrainer() => Plan.DecidedByPeers
        ? (LiveWorkers.FirstOrDefault(InSync) ?? LiveWorkers.First()).Trainer
        : Server!.Trainer;

    public void Dispose()
    {
        foreach (var worker in LiveWorkers) worker.Dispose();
        Server?.Dispose();
        Compute.Dispose();
        foreach (var identity in _identities.Values) identity.Key.Dispose();
    }
}
