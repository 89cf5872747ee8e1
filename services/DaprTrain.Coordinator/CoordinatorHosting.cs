using DaprTrain.Contracts;
using DaprTrain.Coordination;
using DaprTrain.Dapr.Hosting;

namespace DaprTrain.Coordinator;

public static class CoordinatorHosting
{
    public static WebApplicationBuilder AddCoordinator(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<CoordinatorOptions>()
            .BindConfiguration(CoordinatorOptions.Section)
            .PostConfigure<IConfiguration>((options, configuration) =>
            {
                // The same Job:Topology the workers read decides who writes checkpoints; a bad name stops the start.
                if (configuration[CoordinatorOptions.TopologyKey] is string topology)
                {
                    if (!Topologies.TryParse(topology, out var parsed)) options.TopologyError = $"{CoordinatorOptions.TopologyKey} '{topology}' is not a topology; known: {string.Join(", ", Topologies.Names)}.";
                    else options.WorkersWriteCheckpoints = parsed.WorkersWriteCheckpoints();
                }
                // The same Job:Secret and Job:Workers the workers read: who may join, and the proof they bring.
                if (configuration["Job:Secret"] is { Length: > 0 } secret) options.Secret = secret;
                options.Workers = int.TryParse(configuration["Job:Workers"], System.Globalization.CultureInfo.InvariantCulture, out int workers) ? workers : options.Shards;
            })
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddDaprTrainHost(builder.Configuration);
        builder.Services.AddSingleton<DeadLetterLedger>();
        builder.Services.AddProgressEvents(builder.Configuration);
        builder.Services.AddActors(options =>
        {
            options.Actors.RegisterActor<JobCoordinatorActor>();
            options.UseJsonSerialization = true;
        });
        return builder;
    }

    public static WebApplication MapCoordinator(this WebApplication app)
    {
        app.MapDaprTrainApp(DaprApps.Coordinator);
        app.MapActorsHandlers();
        app.MapDeadLetters(DaprComponents.PubSub, DaprTopics.DeadLetters);
        return app;
    }
}
