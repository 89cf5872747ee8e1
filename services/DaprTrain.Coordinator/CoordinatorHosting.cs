using DaprTrain.Dapr;

namespace DaprTrain.Coordinator;

public static class CoordinatorHosting
{
    public static WebApplicationBuilder AddCoordinator(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<CoordinatorOptions>()
            .BindConfiguration(CoordinatorOptions.Section)
            .PostConfigure<IConfiguration>((options, configuration) =>
            {
                // The same Job:Topology the workers read decides who writes checkpoints.
                if (configuration["Job:Topology"] is string topology) options.WorkersWriteCheckpoints = topology != "ps";
            })
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddDaprTrainHost();
        builder.Services.AddActors(options =>
        {
            options.Actors.RegisterActor<JobCoordinatorActor>();
            options.UseJsonSerialization = true;
        });
        return builder;
    }

    public static WebApplication MapCoordinator(this WebApplication app)
    {
        app.UseDaprApiToken(app.Configuration[ApiTokenMiddleware.EnvironmentVariable]);
        app.MapDaprTrainHealth("coordinator");
        app.MapActorsHandlers();
        return app;
    }
}
