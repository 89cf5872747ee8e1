using DaprTrain.Contracts;
using DaprTrain.Dapr;
using Microsoft.Extensions.Options;

namespace DaprTrain.Worker;

public static class WorkerHosting
{
    public const string GradientsRoute = "/messages/gradients";
    public const string WeightsRoute = "/messages/weights";

    public static WebApplicationBuilder AddWorker(this WebApplicationBuilder builder)
    {
        builder.Services.AddDaprTrainHost();
        builder.Services.AddDaprTrainPorts();
        builder.Services.AddSingleton<WorkerRuntime>();
        if (!builder.Configuration.GetValue<bool>("Job:DisableTrainingLoop")) builder.Services.AddHostedService<WorkerLoop>();
        return builder;
    }

    /// <summary>p2p workers subscribe to peers' gradients; ps workers to the server's weights.</summary>
    public static WebApplication MapWorker(this WebApplication app)
    {
        var job = app.Services.GetRequiredService<IOptions<TrainingJobOptions>>().Value;
        app.UseDaprApiToken(app.Configuration[ApiTokenMiddleware.EnvironmentVariable]);
        app.UseCloudEvents();
        app.MapSubscribeHandler();
        app.MapDaprTrainHealth(job.WorkerId);
        app.MapGet("/status", (WorkerRuntime runtime) => runtime.Ready
            ? Results.Json(runtime.Status())
            : Results.Json(new { worker = job.WorkerId, appliedRound = -1L }));
        if (job.Topology == "p2p")
        {
            app.MapPost(GradientsRoute, (HttpRequest request, WorkerRuntime runtime) =>
                    runtime.Gradients.HandleAsync(request, DaprTopics.Gradients, runtime.Deliver((node, payload) => node.HandleGradient(payload))))
                .WithTopic(DaprComponents.PubSub, DaprTopics.Gradients);
        }
        else
        {
            app.MapPost(WeightsRoute, (HttpRequest request, WorkerRuntime runtime) =>
                    runtime.Weights.HandleAsync(request, DaprTopics.Weights, runtime.Deliver((node, payload) => node.HandleWeights(payload))))
                .WithTopic(DaprComponents.PubSub, DaprTopics.Weights);
        }
        return app;
    }
}
