using Dapr;

namespace DaprTrain.Dapr.Hosting;

public static class DaprErrors
{
    /// <summary>Errors of a sidecar, coordinator or store that is briefly away (a restart, a network blip): worth another try.</summary>
    public static bool IsTransient(Exception ex) =>
        ex is HttpRequestException or DaprException or DaprApiException or Grpc.Core.RpcException or TimeoutException or IOException;
}
