namespace DaprTrain.Simulation;

/// <summary>
/// What one hop costs in virtual time: a fixed latency (publish through the sidecar and the broker) plus
/// the bytes over the busiest link of the phase at the link's bandwidth. Defaults: 1 ms and 1 Gbit/s, about
/// a Dapr pub/sub hop (0.6 ms p50 publish in Dapr's perf reports, plus the broker) between cloud VMs.
/// </summary>
public sealed record NetworkModel(double LatencyMs = 1.0, double BandwidthMbps = 1000)
{
    public void Validate()
    {
        if (!(LatencyMs >= 0) || double.IsInfinity(LatencyMs)) throw new ArgumentException($"latency must be zero or more milliseconds (got {LatencyMs}).");
        if (!(BandwidthMbps > 0) || double.IsInfinity(BandwidthMbps)) throw new ArgumentException($"bandwidth must be a positive number of Mbit/s (got {BandwidthMbps}).");
    }

    public double TransferMs(long bytes) => bytes * 8.0 / (BandwidthMbps * 1e6) * 1000.0;

    public double HopMs(long bottleneckBytes) => LatencyMs + TransferMs(bottleneckBytes);
}
