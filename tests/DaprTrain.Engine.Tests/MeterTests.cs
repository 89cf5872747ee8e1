using System.Diagnostics.Metrics;
using DaprTrain.Coordination;
using DaprTrain.Engine.Telemetry;

namespace DaprTrain.Engine.Tests;

[CollectionDefinition(nameof(MeterTests), DisableParallelization = true)]
public sealed class MeterCollection;

/// <summary>
/// The embedded run's accounting is recorded on the project's Meter under the names the services use. The listener is
/// process-wide, so this class runs alone (no other job records while it listens).
/// </summary>
[Collection(nameof(MeterTests))]
public class MeterTests
{
    [Fact]
    public async Task The_bytes_a_run_reports_are_the_bytes_recorded_on_the_DaprTrain_meter()
    {
        var sent = new Dictionary<string, long>();
        var received = new Dictionary<string, long>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == TrainingMetrics.MeterName) l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string node = tags.ToArray().Single(t => t.Key == "daprtrain.node").Value as string ?? "";
            var into = instrument.Name switch { "daprtrain.bytes.sent" => sent, "daprtrain.bytes.received" => received, _ => null };
            if (into is not null) into[node] = into.GetValueOrDefault(node) + value;
        });
        listener.Start();

        var result = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeer, 10));

        foreach (var node in result.Nodes.Where(n => n.BytesSent > 0 || n.BytesReceived > 0))
        {
            sent.GetValueOrDefault(node.Node).Should().Be(node.BytesSent, node.Node);
            received.GetValueOrDefault(node.Node).Should().Be(node.BytesReceived, node.Node);
        }
        sent.Values.Sum().Should().BePositive();
    }
}
