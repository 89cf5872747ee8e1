using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace DaprTrain.Dapr;

/// <summary>Wiring every DaprTrain service shares.</summary>
public static class DaprHosting
{
    public const string HealthPath = "/health";

    public static IServiceCollection AddDaprTrainHost(this IServiceCollection services)
    {
        services.AddDaprClient();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<SidecarStatus>();
        services.AddHostedService(sp => sp.GetRequiredService<SidecarStatus>());
        return services;
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

/// <summary>The engine's ports over Dapr, for the services that train.</summary>
public static class DaprPorts
{
    public static IServiceCollection AddDaprTrainPorts(this IServiceCollection services)
    {
        services.AddSingleton<global::Dapr.Actors.Client.IActorProxyFactory>(_ => new global::Dapr.Actors.Client.ActorProxyFactory(new global::Dapr.Actors.Client.ActorProxyOptions
        {
            UseJsonSerialization = true,
            DaprApiToken = Environment.GetEnvironmentVariable("DAPR_API_TOKEN"),
        }));
        services.AddSingleton<DaprTrain.Engine.Coordination.ICoordinator>(sp =>
            new ActorCoordinator(sp.GetRequiredService<global::Dapr.Actors.Client.IActorProxyFactory>(), sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<TrainingJobOptions>>().Value.JobId));
        services.AddSingleton<DaprTrain.Engine.Storage.ICheckpointStore>(sp =>
            new DaprCheckpointStore(sp.GetRequiredService<global::Dapr.Client.DaprClient>(), Contracts.DaprComponents.StateStore,
                sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<TrainingJobOptions>>().Value.MaxChunkBytes));
        services.AddSingleton<DaprTrain.Engine.Messaging.IMessagePublisher>(sp => new DaprMessagePublisher(sp.GetRequiredService<global::Dapr.Client.DaprClient>(), Contracts.DaprComponents.PubSub,
            sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<TrainingJobOptions>>().Value.MaxChunkBytes));
        services.AddOptions<TrainingJobOptions>()
            .BindConfiguration(TrainingJobOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        return services;
    }
}
