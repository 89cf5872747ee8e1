using Microsoft.Extensions.DependencyInjection;

namespace DaprTrain.Dapr;

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
        services.AddSingleton<DaprTrain.Coordination.ICoordinator>(sp =>
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
