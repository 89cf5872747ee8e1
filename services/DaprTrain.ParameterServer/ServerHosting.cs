using DaprTrain.Contracts;
using DaprTrain.Dapr;

namespace DaprTrain.ParameterServer;

public static class ServerHosting
{
    public const string GradientsRoute = "/messages/gradients";

    public static WebApplicationBuilder AddParameterServer(this WebApplicationBuilder builder)
    {
        builder.Services.AddDaprTrainHost();
        builder.Services.AddDaprTrainPorts();
        builder.Services.AddSingleton<ServerRuntime>();
        if (!builder.Configuration.GetValue<bool>("Job:DisableTrainingLoop")) builder.Services.AddHostedService<ServerLoop>();
        return builder;
    }

    public static WebApplication MapParameterServer(this WebApplication app)
    {
        app.UseDaprApiToken(app.Configuration[ApiTokenMiddleware.EnvironmentVariable]);
        app.UseCloudEvents();
        app.MapSubscribeHandler();
        app.MapDaprTrainHealth(DaprApps.ParameterServer);
        app.MapPost(GradientsRoute, (HttpRequest request, ServerRuntime runtime) => runtime.Gradients.HandleAsync(request, DaprTopics.Gradients, runtime.Deliver()))
            .WithTopic(DaprComponents.PubSub, DaprTopics.Gradients);
        return app;
    }
}
