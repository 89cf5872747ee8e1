using Dapr.Actors.Client;
using Dapr.Client;
using DaprTrain.Contracts;
using DaprTrain.Coordination;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Storage;
using DaprTrain.Engine.Topologies;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace DaprTrain.Dapr;

/// <summary>The engine's ports over Dapr, the job's options and its round plan, for the services that train.</summary>
public static class DaprPorts
{
    public static IServiceCollection AddDaprTrainPorts(this IServiceCollection services)
    {
        services.AddOptions<TrainingJobOptions>()
            .BindConfiguration(TrainingJobOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        // The topology, decided once: its round plan is what the loops and the subscription routes use.
        services.TryAddSingleton(sp => RoundPlans.For(sp.GetRequiredService<IOptions<TrainingJobOptions>>().Value.Topology));
        services.AddSingleton<IActorProxyFactory>(_ => new ActorProxyFactory(new ActorProxyOptions
        {
            UseJsonSerialization = true,
            DaprApiToken = Environment.GetEnvironmentVariable("DAPR_API_TOKEN"),
        }));
        // This process's key pair, made at start and never stored: what it signs its messages, joins and leaves with.
        services.AddSingleton(sp => new DaprTrain.Coordination.Security.MemberIdentity(DaprTrain.Coordination.Security.NodeKey.Create(), Job(sp).Secret));
        // A service that times its rounds (it registers RoundPhases) has its coordinator calls and publishes timed too (issue 16).
        services.AddSingleton<ICoordinator>(sp =>
        {
            var actor = new ActorCoordinator(sp.GetRequiredService<IActorProxyFactory>(), Job(sp).JobId);
            return sp.GetService<DaprTrain.Engine.Telemetry.RoundPhases>() is { } phases ? new PhasedCoordinator(actor, phases) : actor;
        });
        services.AddSingleton<ICheckpointStore>(sp => new DaprCheckpointStore(sp.GetRequiredService<DaprClient>(), DaprComponents.StateStore, Job(sp).MaxChunkBytes));
        services.AddSingleton<IMessagePublisher>(sp => new DaprMessagePublisher(sp.GetRequiredService<DaprClient>(), DaprComponents.PubSub, Job(sp).MaxChunkBytes,
            sp.GetService<DaprTrain.Engine.Telemetry.RoundPhases>(), Job(sp).PublishesOverHttp ? SidecarHttp.Create() : null));
        return services;
    }

    /// <summary>A worker's identity (only workers have one), validated against the job at start.</summary>
    public static IServiceCollection AddDaprTrainWorkerIdentity(this IServiceCollection services)
    {
        services.AddOptions<WorkerOptions>()
            .BindConfiguration(WorkerOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<WorkerOptions>, WorkerOptionsValidation>();
        return services;
    }

    /// <summary>Serverless compute (section Functions): the fan-out to the gradient-function app, used when Functions:Enabled.</summary>
    public static IServiceCollection AddDaprTrainFunctionFanOut(this IServiceCollection services)
    {
        services.AddOptions<FunctionOptions>()
            .BindConfiguration(FunctionOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<FunctionFanOut>();
        return services;
    }

    private static TrainingJobOptions Job(IServiceProvider services) => services.GetRequiredService<IOptions<TrainingJobOptions>>().Value;
}
