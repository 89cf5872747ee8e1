using Dapr;
using DaprTrain.Contracts;
using DaprTrain.Dapr;
using DaprTrain.Dapr.Hosting;
using DaprTrain.Engine.Topologies;
using Microsoft.Extensions.Options;

namespace DaprTrain.Worker;

public static class WorkerHosting
{
    /// <summary>Every topic a worker consumes is delivered to /messages/{topic}.</summary>
    public static string Route(string topic) => "/messages/" + topic;

    public static readonly string GradientsRoute = Route(DaprTopics.Gradients);
    public static readonly string WeightsRoute = Route(DaprTopics.Weights);

    public static WebApplicationBuilder AddWorker(this WebApplicationBuilder builder)
    {
        builder.Services.AddDaprTrainHost(builder.Configuration);
        builder.Services.AddDaprTrainPorts();
        builder.Services.AddDaprTrainWorkerIdentity();
        builder.Services.AddDaprTrainFunctionFanOut();
        builder.Services.AddSingleton<WorkerRuntime>();
        builder.Services.AddProgressEvents(builder.Configuration);
        // Where its rounds' time goes (issue 16): the loop's phases, its coordinator calls and publishes, its deliveries.
        builder.Services.AddSingleton(sp => new DaprTrain.Engine.Telemetry.RoundPhases(sp.GetRequiredService<IOptions<WorkerOptions>>().Value.WorkerId));
        if (!builder.Configuration.GetValue<bool>("Job:DisableTrainingLoop")) builder.Services.AddHostedService<WorkerLoop>();
        return builder;
    }

    /// <summary>
    /// The routes of the topics the job's round plan subscribes this worker to (ps: the server's weights; p2p: peers'
    /// gradients, from each peer's gradients.{id}; p2p-scatter: its own slices.{id} and reduced.{id}), each through its own inbox.
    /// </summary>
    public static WebApplication MapWorker(this WebApplication app)
    {
        string workerId = app.Services.GetRequiredService<IOptions<WorkerOptions>>().Value.WorkerId;
        var plan = app.Services.GetRequiredService<RoundPlan>();
        app.MapDaprTrainApp(workerId);
        app.MapGet("/status", (WorkerRuntime runtime) => runtime.Ready
            ? Results.Json(runtime.Status())
            : Results.Json(new { worker = workerId, appliedRound = -1L }));
        var job = app.Services.GetRequiredService<IOptions<TrainingJobOptions>>().Value;
        foreach (var subscription in plan.Subscriptions(workerId))
        {
            string topic = subscription.Topic;
            var endpoint = app.MapPost(Route(topic), (HttpRequest request, WorkerRuntime runtime) =>
                runtime.Inbox(topic).HandleAsync(request, topic, runtime.Deliver(subscription.Deliver)));
            // One route (and one inbox) for the plan's topic, whichever broker topics bring it (p2p: each peer's own).
            foreach (string brokerTopic in BrokerTopics.Subscribed(job.Topology, topic, workerId, job.Workers))
            {
                endpoint.WithTopic(new TopicOptions { PubsubName = DaprComponents.PubSub, Name = brokerTopic, DeadLetterTopic = DaprTopics.DeadLetters });
            }
        }
        if (plan.DecidedByPeers && job.UsesDecisionHints)
        {
            // Hints that a round is decided (issue 16): a delivery of one wakes the round's wait for the decision.
            app.MapPost(Route(DaprTopics.Decisions), (HttpRequest request, WorkerRuntime runtime) =>
                    runtime.HintInbox.HandleAsync(request, DaprTopics.Decisions, runtime.Deliver((_, payload) => runtime.Hints.Take(payload))))
                .WithTopic(new TopicOptions { PubsubName = DaprComponents.PubSub, Name = DaprTopics.Decisions, DeadLetterTopic = DaprTopics.DeadLetters });
        }
        return app;
    }
}
