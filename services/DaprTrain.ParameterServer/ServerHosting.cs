using Dapr;
using DaprTrain.Contracts;
using DaprTrain.Coordination;
using DaprTrain.Dapr;
using DaprTrain.Dapr.Hosting;
using Microsoft.Extensions.Options;

namespace DaprTrain.ParameterServer;

public static class ServerHosting
{
    public const string GradientsRoute = "/messages/gradients";

    public static WebApplicationBuilder AddParameterServer(this WebApplicationBuilder builder)
    {
        builder.Services.AddDaprTrainHost(builder.Configuration);
        builder.Services.AddDaprTrainPorts();
        builder.Services.AddSingleton<ServerRuntime>();
        builder.Services.AddProgressEvents(builder.Configuration);
        builder.Services.AddSingleton(_ => new DaprTrain.Engine.Telemetry.RoundPhases(DaprTrain.Engine.Nodes.ParameterServerNode.NodeId));
        if (!builder.Configuration.GetValue<bool>("Job:DisableTrainingLoop")) builder.Services.AddHostedService<ServerLoop>();
        return builder;
    }

    public static WebApplication MapParameterServer(this WebApplication app)
    {
        var topology = app.Services.GetRequiredService<IOptions<TrainingJobOptions>>().Value.Topology;
        if (!topology.HasParameterServer())
        {
            // One run file starts every app; in a peer-to-peer job the server stays out of the way.
            app.MapDaprTrainApp(DaprApps.ParameterServer, idle: $"the job's topology is {topology.Name()}, not {Topology.ParameterServer.Name()}");
            app.Logger.LogInformation("the job's topology is {Topology}: the parameter server is idle", topology.Name());
            return app;
        }
        app.MapDaprTrainApp(DaprApps.ParameterServer);
        app.MapGet("/status", (ServerRuntime runtime) => runtime.Ready
            ? Results.Json(runtime.Use(n => new { server = DaprApps.ParameterServer, appliedRound = n.AppliedRound, generation = n.Generation, weightHash = n.WeightHash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture), lastContributors = runtime.LastContributors, phases = runtime.Phases.Snapshot() }))
            : Results.Json(new { server = DaprApps.ParameterServer, appliedRound = -1L }));
        app.MapPost(GradientsRoute, (HttpRequest request, ServerRuntime runtime) => runtime.Gradients.HandleAsync(request, DaprTopics.Gradients, runtime.Deliver((node, payload) => node.HandleGradient(payload))))
            .WithTopic(new TopicOptions { PubsubName = DaprComponents.PubSub, Name = DaprTopics.Gradients, DeadLetterTopic = DaprTopics.DeadLetters });
        return app;
    }
}
