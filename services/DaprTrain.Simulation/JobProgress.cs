using DaprTrain.Coordination;
using DaprTrain.Engine.Nodes;
using DaprTrain.Engine.Telemetry;
using DaprTrain.Simulation.Accounting;

namespace DaprTrain.Simulation;

/// <summary>
/// The embedded job's progress events (schemas/progress-event.schema.json), on the virtual clock: the same kinds and
/// sources the services publish (round-completed from each node, membership from the coordinator), so a dashboard
/// shows an embedded run as it shows a Dapr one. Membership events are diffs of consecutive views, each carrying the
/// whole new view. Silent when the job was given no sink.
/// </summary>
internal sealed class JobProgress(ProgressEmitter? emitter)
{
    public const string JobSource = "job";
    public const string CoordinatorSource = "coordinator";

    private MembershipView? _last;

    public bool Enabled => emitter is not null;

    public void Emit(string source, ProgressEvent progress) => emitter?.Emit(source, progress);

    public void Started(JobOptions options) => Emit(JobSource, ProgressEvent.JobStarted(options.Topology.Name(), "embedded", virtualClock: true,
        options.Workers, options.Rounds, options.Trainer.Model, options.ResolvedAggregator.ToString(), options.Codec.ToString(),
        options.Compute == ComputeMode.Serverless, options.Faults.Name));

    /// <summary>Membership changes between the last view and this one, each with the whole new view.</summary>
    public void View(MembershipView view, int generation)
    {
        if (emitter is null) return;
        var before = _last;
        _last = view;
        var members = view.Members.Order(StringComparer.Ordinal).ToList();
        var owners = view.ShardOwners.OrderBy(p => p.Key).Select(p => p.Value).ToList();
        void Change(string change, string? node) =>
            Emit(CoordinatorSource, ProgressEvent.Membership(change, node, generation, members, view.CheckpointWriter, owners));

        var previous = before?.Members ?? [];
        foreach (string node in view.Members.Except(previous).Order(StringComparer.Ordinal)) Change("joined", node);
        foreach (string node in previous.Except(view.Members).Order(StringComparer.Ordinal))
        {
            Change(view.Expired.Contains(node) ? "lease-expired" : "left", node);
        }
        if (before is null) return;
        if (!owners.SequenceEqual(before.ShardOwners.OrderBy(p => p.Key).Select(p => p.Value))) Change("shards-moved", null);
        if (view.CheckpointWriter != before.CheckpointWriter) Change("checkpoint-writer", view.CheckpointWriter);
    }

    public void RoundCompleted(SimulatedCluster cluster, long round, double startMs, int included, int members)
    {
        if (emitter is null) return;
        double duration = cluster.Clock.NowMs - startMs;
        foreach (var worker in cluster.LiveWorkers.Where(w => w.AppliedRound >= round))
        {
            Emit(worker.Id, ProgressEvent.RoundCompleted(round, worker.Generation, duration, cluster.Accounting.RoundBytes(worker.Id), included, members));
        }
        if (cluster.Server is { } server && server.AppliedRound >= round)
        {
            Emit(ParameterServerNode.NodeId, ProgressEvent.RoundCompleted(round, server.Generation, duration,
                cluster.Accounting.RoundBytes(ParameterServerNode.NodeId), included, members));
        }
    }

    /// <summary>Running cost so far (modelled from the price table), on the evaluation rounds.</summary>
    public void Cost(long round, PriceTable prices, Billing billing) =>
        Emit(JobSource, ProgressEvent.Cost(round, billing.InstancesUsd, billing.AllFunctionsUsd,
            $"modelled: {prices.Source} ({prices.Date}, {prices.Region})"));
}
