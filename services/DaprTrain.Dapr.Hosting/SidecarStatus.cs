using Dapr.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Dapr.Hosting;

/// <summary>
/// Whether this app's Dapr sidecar answers. Until it does, the app runs (its health endpoint answers) and says,
/// every few seconds, that it is waiting for the sidecar and where it looks for it.
/// </summary>
public sealed class SidecarStatus(DaprClient dapr, TimeProvider time, ILogger<SidecarStatus> logger) : BackgroundService
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(5);

    private volatile bool _healthy;
    private volatile bool _declaredReady;

    public bool Ready => _healthy || _declaredReady;

    /// <summary>For in-process tests whose "sidecar" is the test itself.</summary>
    internal void MarkReady() => _declaredReady = true;

    public string Describe() => Ready
        ? "ready"
        : $"waiting for the Dapr sidecar (DAPR_HTTP_PORT={Environment.GetEnvironmentVariable("DAPR_HTTP_PORT") ?? "3500"}, " +
          $"DAPR_GRPC_PORT={Environment.GetEnvironmentVariable("DAPR_GRPC_PORT") ?? "50001"}); start this app with 'dapr run' or 'dapr run -f dapr.yaml'";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Short polls: daprd reports healthy only once it has read this app's subscriptions, a moment after the app is up.
        var nextLog = time.GetUtcNow() + LogInterval;
        while (!stoppingToken.IsCancellationRequested && !Ready)
        {
            try
            {
                _healthy = await dapr.CheckHealthAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _healthy = false;
            }
            if (Ready)
            {
                logger.LogInformation("Dapr sidecar is ready");
                return;
            }
            if (time.GetUtcNow() >= nextLog)
            {
                logger.LogWarning("{Status}", Describe());
                nextLog = time.GetUtcNow() + LogInterval;
            }
            await Task.Delay(Poll, time, stoppingToken);
        }
    }
}
