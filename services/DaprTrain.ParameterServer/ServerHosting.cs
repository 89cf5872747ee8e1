using DaprTrain.Contracts;
using DaprTrain.Dapr;

namespace DaprTrain.ParameterServer;

public static class ServerHosting
{
    public const string GradientsRoute = "/messages/gradients";

    private static bool IsUsed(IConfiguration configuration) => (configuration["Job:Topology"] ?? "ps") == "ps";

    public static WebApplicationBuilder AddParameterServer(this WebApplicationBuilder builder)
    {
        builder.Services.AddDaprTrainHost();
        builder.Services.AddDaprTrainPorts();
        builder.Services.AddSingleton<ServerRuntime>();
        if (!builder.Configuration.GetValue<bool>("Job:DisableTrainingLoop") && IsUsed(builder.Configuration)) builder.Services.AddHostedService<ServerLoop>();
        return builder;
    }

    public static WebApplication MapParameterServer(this WebApplication app)
    {
        app.UseDaprApiToken(app.Configuration[ApiTokenMiddleware.EnvironmentVariable]);
        app.UseCloudEvents();
        app.MapSubscribeHandler();
        if (!IsUsed(app.Configuration))
        {
            // One run file starts every app; in a peer-to-peer job the server stays out of the way.
            app.MapGet(DaprHosting.HealthPath, () => Results.Json(new { service = DaprApps.ParameterServer, status = "idle: the job's topology is not ps" }));
            app.Logger.LogInformation("the job's topology is {Topology}: the parameter server is idle", app.Configuration["Job:Topology"]);
            return app;
        }
        app.MapDaprTrainHealth(DaprApps.ParameterServer);
        app.MapGet("/status", (ServerRuntime runtime) => runtime.Ready
            ? Results.Json(runtime.Use(n => new { server = DaprApps.ParameterServer, appliedRound = n.AppliedRound, generation = n.Generation, weightHash = n.WeightHash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture) }))
            : Results.Json(new { server = DaprApps.ParameterServer, appliedRound = -1L }));
        app.MapPost(GradientsRoute, (HttpRequest request, ServerRuntime runtime) => runtime.Gradients.HandleAsync(request, DaprTopics.Gradients, runtime.Deliver((node, payload) => node.HandleGradient(payload))))
            .WithTopic(DaprComponents.PubSub, DaprTopics.Gradients);
        return app;
    }
}
