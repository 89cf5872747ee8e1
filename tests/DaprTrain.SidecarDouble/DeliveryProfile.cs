namespace DaprTrain.SidecarDouble;

/// <summary>What becomes of a delivery that failed (RETRY, an unknown status, a non-2xx other than 404, an app that does not answer) once any inbound retry policy is spent and no dead-letter topic took it.</summary>
public enum AfterFailedDelivery
{
    /// <summary>pubsub.redis from components-contrib v1.17.0: the handler's error is acknowledged (XACK) all the same; the message is gone.</summary>
    Lost,

    /// <summary>pubsub.redis up to v1.16: left pending, and reclaimed (delivered again) once it has been pending for processingTimeout.</summary>
    ReclaimedAfterProcessingTimeout,

    /// <summary>pubsub.kafka (consumeRetryEnabled, true by default for pub/sub): retried without limit, the partition waiting behind it.</summary>
    RetriedForever,
}

/// <summary>A Resiliency policy's inbound retry for the pub/sub component (kind Resiliency, spec.targets.components.&lt;name&gt;.inbound.retry), constant back-off.</summary>
/// <param name="Interval">The policy's <c>duration</c>.</param>
/// <param name="MaxRetries">Retries after the first attempt; -1 for no limit.</param>
public sealed record InboundRetry(TimeSpan Interval, int MaxRetries);

/// <summary>
/// How the sidecars deliver, as one broker component at one Dapr version does it. The app's answers are read as
/// daprd reads them (<see cref="Broker"/>); what differs per profile is what a failed delivery becomes, whether a 404
/// goes to a declared dead-letter topic, and how many deliveries of one subscription are in flight at once.
/// </summary>
/// <param name="Name">The profile's name: redis-1.16, redis-1.17, redis-1.17+resiliency, kafka.</param>
/// <param name="Concurrency">Deliveries of one subscription in flight at once (pubsub.redis <c>concurrency</c>, 10 by default); above 1 they overlap and arrive out of order.</param>
/// <param name="AfterFailure">What a failure becomes once <paramref name="Retry"/> is spent and no dead-letter topic took it.</param>
/// <param name="Retry">The Resiliency inbound retry, or null without a policy (one attempt).</param>
/// <param name="ProcessingTimeout">pubsub.redis <c>processingTimeout</c>: how long a failed message stays pending before it is reclaimed (1.16), or Kafka's back-off between its own retries.</param>
/// <param name="NotFoundIsDropped">True from Dapr 1.17: a 404 is a DROP (to the dead-letter topic when one is declared); on 1.16 a 404 is acknowledged like a success.</param>
public sealed record DeliveryProfile(string Name, int Concurrency, AfterFailedDelivery AfterFailure, InboundRetry? Retry, TimeSpan ProcessingTimeout, bool NotFoundIsDropped)
{
    /// <summary>The retry the project's components/*/resiliency.yaml declare for the gradients pub/sub: constant 1 s, 10 retries.</summary>
    public static InboundRetry ProjectInboundRetry { get; } = new(TimeSpan.FromSeconds(1), 10);

    /// <summary>
    /// daprd 1.16 with components-contrib v1.16 pubsub.redis: a failed message is left pending and reclaimed after
    /// <paramref name="processingTimeout"/> (components/redis/pubsub.yaml sets 15 s; the component's own default is 60 s).
    /// </summary>
    public static DeliveryProfile Redis116(TimeSpan? processingTimeout = null, InboundRetry? retry = null, int concurrency = 10) =>
        new("redis-1.16", concurrency, AfterFailedDelivery.ReclaimedAfterProcessingTimeout, retry, processingTimeout ?? TimeSpan.FromSeconds(15), NotFoundIsDropped: false);

    /// <summary>daprd 1.17+ with pubsub.redis v1.17+ and no Resiliency policy: a failed delivery is acknowledged and lost. The strictest profile.</summary>
    public static DeliveryProfile Redis117(int concurrency = 10) =>
        new("redis-1.17", concurrency, AfterFailedDelivery.Lost, null, TimeSpan.FromSeconds(15), NotFoundIsDropped: true);

    /// <summary>daprd 1.17+ with pubsub.redis v1.17+ and an inbound retry (by default the project's: constant 1 s, 10 retries); spent, the message is lost.</summary>
    public static DeliveryProfile Redis117WithResiliency(InboundRetry? retry = null, int concurrency = 10) =>
        new("redis-1.17+resiliency", concurrency, AfterFailedDelivery.Lost, retry ?? ProjectInboundRetry, TimeSpan.FromSeconds(15), NotFoundIsDropped: true);

    /// <summary>
    /// daprd 1.17+ with pubsub.kafka: one partition per topic here, so deliveries are in order, one at a time, and a
    /// failed one is retried every <paramref name="backOff"/> (the component's backOffDuration) without limit while the
    /// ones behind it wait.
    /// </summary>
    public static DeliveryProfile Kafka(TimeSpan? backOff = null, InboundRetry? retry = null) =>
        new("kafka", 1, AfterFailedDelivery.RetriedForever, retry, backOff ?? TimeSpan.FromSeconds(5), NotFoundIsDropped: true);

    /// <summary>A profile by its name (redis-1.16, redis-1.17, redis-1.17+resiliency, kafka), with each one's defaults.</summary>
    public static DeliveryProfile Named(string name) => name switch
    {
        "redis-1.16" => Redis116(),
        "redis-1.17" => Redis117(),
        "redis-1.17+resiliency" => Redis117WithResiliency(),
        "kafka" => Kafka(),
        _ => throw new ArgumentException($"unknown delivery profile '{name}' (redis-1.16, redis-1.17, redis-1.17+resiliency, kafka)", nameof(name)),
    };
}
