using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace DaprTrain.Dapr.Hosting;

/// <summary>Wiring every DaprTrain service shares.</summary>
public static class DaprHosting
{
    public const string HealthPath = "/health";

    public static IServiceCollection AddDaprTrainHost(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddDaprClient();
        services.AddSocketReadBlocks(configuration);
        services.AddDaprTrainTelemetry(configuration);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<SidecarStatus>();
        services.AddHostedService(sp => sp.GetRequiredService<SidecarStatus>());
        return services;
    }

    /// <summary>Where a block size is configured: bytes a socket read may take at most (<see cref="LargeBlockMemoryPool"/>).</summary>
    public const string SocketReadBlockKey = "Hosting:SocketReadBlockBytes";

    /// <summary>
    /// Kestrel reads sockets into blocks of <see cref="LargeBlockMemoryPool.DefaultBlockSize"/>; <see cref="SocketReadBlockKey"/>
    /// sets another size from 4096 to 1048576, or 0 for Kestrel's own pool (4 KB blocks, for measuring). Checked here, at start.
    /// </summary>
    public static IServiceCollection AddSocketReadBlocks(this IServiceCollection services, IConfiguration configuration)
    {
        string? configured = configuration[SocketReadBlockKey];
        int size = LargeBlockMemoryPool.DefaultBlockSize;
        if (!string.IsNullOrEmpty(configured)
            && (!int.TryParse(configured, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out size) || (size != 0 && size is < LargeBlockMemoryPool.MinBlockSize or > LargeBlockMemoryPool.MaxBlockSize)))
        {
            throw new InvalidOperationException($"{SocketReadBlockKey} is '{configured}': give 0 (Kestrel's own 4 KB blocks) or a block size from {LargeBlockMemoryPool.MinBlockSize} to {LargeBlockMemoryPool.MaxBlockSize} bytes.");
        }
        if (size > 0) services.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>>(new LargeBlockMemoryPoolFactory(size));
        return services;
    }

    /// <summary>
    /// What every app answers daprd with, in one call: the API token check first (nothing else answers an
    /// unauthenticated caller), GET /dapr/subscribe listing the routes mapped with WithTopic, and GET /health.
    /// No UseCloudEvents: the subscription routes read their CloudEvents themselves (DaprTrain.Dapr.CloudEventData), bounded,
    /// and answer DROP where that middleware would answer 500 (and so have daprd retry poison). <paramref name="idle"/> says why an app that has nothing to do
    /// in this job (a parameter server in a peer-to-peer job) stays up.
    /// </summary>
    public static WebApplication MapDaprTrainApp(this WebApplication app, string service, string? idle = null)
    {
        string? token = app.Configuration[ApiTokenMiddleware.EnvironmentVariable];
        // The run file and the chart ask for the token: without it any local process (or pod) could post forged deliveries
        // to the routes and call the coordinator actor's methods. Tests that drive the apps directly leave it off.
        if (string.IsNullOrEmpty(token) && string.Equals(app.Configuration[ApiTokenMiddleware.RequireVariable], "true", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"{ApiTokenMiddleware.EnvironmentVariable} is not set, and {ApiTokenMiddleware.RequireVariable} asks for it: "
                + "start the apps with ./run-local.sh (it makes one and gives it to daprd and the apps), or export APP_API_TOKEN before `dapr run -f dapr.yaml`.");
        }
        app.UseDaprApiToken(token);
        app.MapSubscribeHandler();
        app.MapDaprTrainMetrics();
        if (idle is null) app.MapDaprTrainHealth(service);
        else app.MapGet(HealthPath, () => Results.Json(new { service, status = "idle: " + idle }));
        return app;
    }

    /// <summary>The API token check goes first, so that nothing else answers an unauthenticated caller.</summary>
    public static IApplicationBuilder UseDaprApiToken(this IApplicationBuilder app, string? token) =>
        app.UseMiddleware<ApiTokenMiddleware>(token ?? string.Empty);

    /// <summary>GET /health: 200 while the process runs, with the sidecar's state in the body.</summary>
    public static IEndpointRouteBuilder MapDaprTrainHealth(this IEndpointRouteBuilder endpoints, string service)
    {
        endpoints.MapGet(HealthPath, (SidecarStatus sidecar) => Results.Json(new { service, status = "running", sidecar = sidecar.Describe() },
            new JsonSerializerOptions(JsonSerializerDefaults.Web)));
        return endpoints;
    }
}
