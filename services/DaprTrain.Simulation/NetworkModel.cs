namespace DaprTrain.Simulation;

/// <summary>
/// What one hop costs in virtual time: a fixed latency (publish through the sidecar and the broker) plus
/// the bytes over the busiest link of the phase at the link's bandwidth. Defaults: 1 ms and 1 Gbit/s, about
/// a Dapr pub/sub hop (0.6 ms p50 publish in Dapr's perf reports, plus the broker) between cloud VMs.
/// </summary>
public sealed record NetworkModel(double LatencyMs = 1.0, double BandwidthMbps = 1000)
{
    /// <summary>The longest hop latency the model takes: a minute (a hop on Earth takes well under a second).</summary>
    public const double MaxLatencyMs = 60_000;

    /// <summary>The slowest link the model takes: 0.01 Mbit/s (10 kbit/s).</summary>
    public const double MinBandwidthMbps = 0.01;

    /// <summary>The fastest link the model takes: 1,000,000 Mbit/s (1 Tbit/s).</summary>
    public const double MaxBandwidthMbps = 1_000_000;

    public void Validate()
    {
        if (LatencyError(LatencyMs) is string latency) throw new ArgumentException(latency.Replace("--latency-ms", "latency", StringComparison.Ordinal));
        if (BandwidthError(BandwidthMbps) is string bandwidth) throw new ArgumentException(bandwidth.Replace("--bandwidth-mbps", "bandwidth", StringComparison.Ordinal));
    }

    /// <summary>Why a hop latency is not physically sensible, or null.</summary>
    public static string? LatencyError(double ms) =>
        ms is >= 0 and <= MaxLatencyMs ? null : $"--latency-ms must be between 0 and {MaxLatencyMs:0} ms (got {ms}).";

    /// <summary>Why a link bandwidth is not physically sensible, or null.</summary>
    public static string? BandwidthError(double mbps) =>
        mbps is >= MinBandwidthMbps and <= MaxBandwidthMbps ? null : $"--bandwidth-mbps must be between {MinBandwidthMbps} and {MaxBandwidthMbps:0} Mbit/s (got {mbps}).";

    public double TransferMs(long bytes) => bytes * 8.0 / (BandwidthMbps * 1e6) * 1000.0;

    public double HopMs(long bottleneckBytes) => LatencyMs + TransferMs(bottleneckBytes);
}
