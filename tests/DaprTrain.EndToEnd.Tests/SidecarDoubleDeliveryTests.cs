using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using DaprTrain.SidecarDouble;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>
/// The double's pub/sub and actor turns as daprd's: the app's answers read as daprd's HTTP postman reads them, each
/// delivery profile's treatment of a failure, dead-letter topics only when declared, deliveries in flight at once,
/// and one turn per actor for every caller, reminder and timer. The apps are small hosts that record what arrives.
/// </summary>
public sealed class SidecarDoubleDeliveryTests : IAsyncLifetime
{
    private const string PubSub = "gradients";
    private const string Topic = "t";
    private const string DeadLetterTopic = "t-dead";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly List<IAsyncDisposable> _owned = [];

    /// <summary>A retry policy short enough for a test: 3 retries 10 ms apart.</summary>
    private static readonly InboundRetry QuickRetry = new(TimeSpan.FromMilliseconds(10), 3);

    [Theory]
    [InlineData("""{"status":"success"}""", "lower-case: the comparison is case-sensitive")]
    [InlineData("""{"status":"BOGUS"}""", "an unknown status")]
    [InlineData("""{"status":"RETRY"}""", "RETRY")]
    public async Task An_answer_daprd_does_not_take_for_success_is_retried_by_the_policy_then_lost_without_a_dead_letter_topic(string answer, string what)
    {
        var components = Own(new SharedComponents(delivery: DeliveryProfile.Redis117WithResiliency(QuickRetry)));
        var app = await StartAppAsync(components, _ => Results.Text(answer, "application/json"));

        await PublishAndSettleAsync(components, 1);

        app.Received.Should().HaveCount(1 + QuickRetry.MaxRetries, what + " is retried");
        components.Broker.Delivered.Should().Be(0);
        components.Broker.Undelivered.Should().ContainSingle(what + " ends lost once the policy is spent (Redis 1.17+)");
        components.Broker.DeadLetters.Should().BeEmpty();
    }

    /// <summary>daprd skips the status check when the body does not decode into its answer (an object with a string status).</summary>
    [Theory]
    [InlineData("not json at all")]
    [InlineData("""["an array"]""")]
    [InlineData("""{"status":5}""")]
    public async Task A_2xx_whose_body_is_no_answer_daprd_can_read_acknowledges_at_once(string answer)
    {
        var components = Own(new SharedComponents(delivery: DeliveryProfile.Redis117WithResiliency(QuickRetry)));
        var app = await StartAppAsync(components, _ => Results.Text(answer, "application/json"));

        await PublishAndSettleAsync(components, 1);

        app.Received.Should().HaveCount(1);
        components.Broker.Delivered.Should().Be(1);
    }

    [Fact]
    public async Task DROP_without_a_dead_letter_topic_is_dropped_and_recorded_as_no_dead_letter()
    {
        var components = Own(new SharedComponents(delivery: DeliveryProfile.Redis117WithResiliency(QuickRetry)));
        var app = await StartAppAsync(components, _ => Results.Json(new { status = "DROP" }));

        await PublishAndSettleAsync(components, 1);

        app.Received.Should().HaveCount(1, "a DROP is never retried");
        components.Broker.DeadLetters.Should().BeEmpty("the subscription declares no dead-letter topic");
        components.Broker.Undelivered.Should().ContainSingle();
    }

    [Fact]
    public async Task DROP_and_a_failure_past_the_policy_go_to_the_declared_dead_letter_topic_and_reach_its_subscriber()
    {
        var components = Own(new SharedComponents(delivery: DeliveryProfile.Redis117WithResiliency(QuickRetry)));
        var app = await StartAppAsync(components, body => body.Contains("\"drop\"", StringComparison.Ordinal) ? Results.Json(new { status = "DROP" }) : Results.StatusCode(500),
            deadLetterTopic: DeadLetterTopic);

        // Two messages to the topic, each then to the dead-letter topic, where the same app acknowledges them.
        await PublishAndSettleAsync(components, 4, "drop", "fail");

        components.Broker.DeadLetters.Should().HaveCount(2).And.OnlyContain(d => d.DeadLetterTopic == DeadLetterTopic);
        components.Broker.Undelivered.Should().BeEmpty();
        app.DeadLetters.Should().HaveCount(2, "the dead-letter topic's subscriber gets both");
    }

    [Fact]
    public async Task A_404_goes_to_the_dead_letter_topic_from_1_17_and_is_acknowledged_on_1_16()
    {
        var newer = Own(new SharedComponents(delivery: DeliveryProfile.Redis117()));
        await StartAppAsync(newer, _ => Results.NotFound(), deadLetterTopic: DeadLetterTopic);
        await PublishAndSettleAsync(newer, 2);
        newer.Broker.DeadLetters.Should().ContainSingle();

        var older = Own(new SharedComponents(delivery: DeliveryProfile.Redis116()));
        await StartAppAsync(older, _ => Results.NotFound(), deadLetterTopic: DeadLetterTopic);
        await PublishAndSettleAsync(older, 1);
        older.Broker.DeadLetters.Should().BeEmpty("daprd 1.16 answers a 404 with nil: acknowledged, no dead letter");
        older.Broker.Delivered.Should().Be(1);
    }

    [Fact]
    public async Task On_redis_1_17_without_a_policy_a_RETRY_a_500_and_an_app_that_is_not_there_are_each_delivered_once_and_lost()
    {
        var components = Own(new SharedComponents());
        components.Delivery.Name.Should().Be("redis-1.17", "the strictest profile is the default");
        var app = await StartAppAsync(components, body => body.Contains("\"retry\"", StringComparison.Ordinal) ? Results.Json(new { status = "RETRY" }) : Results.StatusCode(500));
        // A third subscriber whose app is gone (a killed process: nothing listens on its port any more).
        components.Broker.Subscribe("gone", new Uri($"http://127.0.0.1:{Sidecar.FreePort()}/"), PubSub, Topic, "/messages");

        await PublishAndSettleAsync(components, 4, "retry", "fail");

        app.Received.Should().HaveCount(2, "nothing is delivered twice");
        components.Broker.Undelivered.Should().HaveCount(4);
        components.Broker.Undelivered.Should().Contain(u => u.AppId == "gone" && u.Reason.Contains("unreachable", StringComparison.Ordinal));
    }

    [Fact]
    public async Task On_redis_1_16_a_failed_delivery_is_reclaimed_after_the_processing_timeout()
    {
        var components = Own(new SharedComponents(delivery: DeliveryProfile.Redis116(processingTimeout: TimeSpan.FromMilliseconds(100))));
        int calls = 0;
        var app = await StartAppAsync(components, _ => Interlocked.Increment(ref calls) == 1 ? Results.Json(new { status = "RETRY" }) : Results.Ok());

        await PublishAndSettleAsync(components, 1);

        app.Received.Should().HaveCount(2);
        components.Broker.Delivered.Should().Be(1);
        components.Broker.Undelivered.Should().BeEmpty();
    }

    [Fact]
    public async Task With_the_policy_a_delivery_that_fails_less_often_than_its_retries_arrives()
    {
        var components = Own(new SharedComponents(delivery: DeliveryProfile.Redis117WithResiliency(QuickRetry)));
        int calls = 0;
        var app = await StartAppAsync(components, _ => Interlocked.Increment(ref calls) <= QuickRetry.MaxRetries ? Results.StatusCode(503) : Results.Ok());

        await PublishAndSettleAsync(components, 1);

        app.Received.Should().HaveCount(QuickRetry.MaxRetries + 1);
        components.Broker.Delivered.Should().Be(1);
    }

    [Fact]
    public async Task On_kafka_a_failing_message_is_retried_until_it_succeeds_and_the_ones_behind_it_wait()
    {
        var components = Own(new SharedComponents(delivery: DeliveryProfile.Kafka(backOff: TimeSpan.FromMilliseconds(10))));
        int firstCalls = 0;
        var app = await StartAppAsync(components, body => body.Contains("\"first\"", StringComparison.Ordinal) && Interlocked.Increment(ref firstCalls) <= 5
            ? Results.Json(new { status = "RETRY" })
            : Results.Ok());

        await PublishAndSettleAsync(components, 3, "first", "second", "third");

        app.Received.Select(Label).Should().Equal("first", "first", "first", "first", "first", "first", "second", "third");
        app.MostInFlight.Should().Be(1);
    }

    [Fact]
    public async Task Deliveries_of_one_subscription_overlap_up_to_the_profiles_concurrency()
    {
        var components = Own(new SharedComponents());
        components.Delivery.Concurrency.Should().Be(10, "pubsub.redis delivers with concurrency 10 by default");
        var allInFlight = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var app = await StartAppAsync(components, _ => Results.Ok());
        app.OnArrival = inFlight =>
        {
            if (inFlight >= 10) allInFlight.TrySetResult();
            return allInFlight.Task;
        };

        // Each delivery is held until ten are in the app at once: one at a time, this would never finish.
        var settled = PublishAndSettleAsync(components, 10, [.. Enumerable.Range(0, 10).Select(i => $"m{i}")]);
        await allInFlight.Task.WaitAsync(Patience);
        await settled;

        app.MostInFlight.Should().Be(10);
        components.Broker.Delivered.Should().Be(10);
    }

    [Fact]
    public async Task Two_sidecars_calling_one_actor_take_turns_inside_it()
    {
        var components = Own(new SharedComponents());
        var host = await StartAppAsync(components, _ => Results.Ok(), actorType: "TestActor");
        var caller = Own(await Sidecar.StartAsync("caller", new Uri($"http://127.0.0.1:{Sidecar.FreePort()}/"), components));
        var secondIsWaiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        components.ActorTurns.Waiting += (type, id) => secondIsWaiting.TrySetResult();
        // The first call stays in the actor until the second has either come in too (the bug) or waits for its turn.
        host.OnActorCall = (path, inside) => inside == 1 && path.EndsWith("/first", StringComparison.Ordinal)
            ? Task.WhenAny(host.SecondEntered.Task, secondIsWaiting.Task)
            : Task.CompletedTask;

        using var http = new HttpClient();
        var first = http.PutAsync(ActorUri(host.Sidecar, "TestActor", "a", "method/first"), Json("{}"));
        await host.FirstEntered.Task.WaitAsync(Patience);
        var second = http.PutAsync(ActorUri(caller, "TestActor", "a", "method/second"), Json("{}"));

        (await first.WaitAsync(Patience)).StatusCode.Should().Be(HttpStatusCode.OK);
        (await second.WaitAsync(Patience)).StatusCode.Should().Be(HttpStatusCode.OK);
        host.MostInsideOneActor.Should().Be(1, "daprd lets one call at a time into an actor, whichever sidecar it came through");
        host.ActorLog.Should().Equal("enter first", "leave first", "enter second", "leave second");
    }

    [Fact]
    public async Task A_reminder_and_a_timer_firing_wait_for_the_call_that_is_running_in_their_actor()
    {
        var components = Own(new SharedComponents());
        var host = await StartAppAsync(components, _ => Results.Ok(), actorType: "TestActor");
        int waiting = 0;
        var bothWaiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        components.ActorTurns.Waiting += (type, id) =>
        {
            if (Interlocked.Increment(ref waiting) == 2) bothWaiting.TrySetResult();
        };
        var bothEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        host.OnActorCall = (path, inside) =>
        {
            if (host.ActorLog.Count(l => l.StartsWith("enter ", StringComparison.Ordinal) && !l.EndsWith("long", StringComparison.Ordinal)) >= 2) bothEntered.TrySetResult();
            // The long call stays until the reminder and the timer both wait for the turn, or both came in beside it (the bug).
            return path.EndsWith("/long", StringComparison.Ordinal) ? Task.WhenAny(bothWaiting.Task, bothEntered.Task) : Task.CompletedTask;
        };

        using var http = new HttpClient();
        var call = http.PutAsync(ActorUri(host.Sidecar, "TestActor", "a", "method/long"), Json("{}"));
        await host.FirstEntered.Task.WaitAsync(Patience);
        (await http.PutAsync(ActorUri(host.Sidecar, "TestActor", "a", "reminders/lease"), Json("""{"dueTime":"0h0m0s0ms"}"""))).StatusCode.Should().Be(HttpStatusCode.NoContent);
        (await http.PutAsync(ActorUri(host.Sidecar, "TestActor", "a", "timers/tick"), Json("""{"callback":"Tick","dueTime":"0h0m0s0ms"}"""))).StatusCode.Should().Be(HttpStatusCode.NoContent);

        (await call.WaitAsync(Patience)).StatusCode.Should().Be(HttpStatusCode.OK);
        await host.WaitForActorLogAsync(6);
        host.MostInsideOneActor.Should().Be(1, "a reminder or a timer is a turn of the actor like any call");
        host.ActorLog.Take(2).Should().Equal("enter long", "leave long");
    }

    private static string Label(string envelope)
    {
        using var json = JsonDocument.Parse(envelope);
        return json.RootElement.GetProperty("data").GetProperty("label").GetString()!;
    }

    private static Uri ActorUri(Sidecar sidecar, string type, string id, string rest) => new($"http://127.0.0.1:{sidecar.HttpPort}/v1.0/actors/{type}/{id}/{rest}");

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>Publishes one JSON message per label (one unlabelled without labels) and waits until <paramref name="settled"/> messages have left their subscriptions for good.</summary>
    private static async Task PublishAndSettleAsync(SharedComponents components, int settled, params string[] labels)
    {
        int count = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        components.Broker.Settled += () =>
        {
            if (Interlocked.Increment(ref count) >= settled) done.TrySetResult();
        };
        foreach (string label in labels.Length == 0 ? ["message"] : labels)
        {
            components.Broker.Publish("publisher", PubSub, Topic, JsonSerializer.SerializeToUtf8Bytes(new { label }), "application/json");
        }
        await done.Task.WaitAsync(Patience);
    }

    private T Own<T>(T owned) where T : IAsyncDisposable
    {
        _owned.Add(owned);
        return owned;
    }

    private async Task<TestApp> StartAppAsync(SharedComponents components, Func<string, IResult> answer, string? deadLetterTopic = null, string? actorType = null)
    {
        var app = Own(new TestApp(answer));
        await app.StartAsync(components, deadLetterTopic, actorType);
        return app;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // Apps and sidecars first, the components they share last.
        for (int i = _owned.Count - 1; i >= 0; i--) await _owned[i].DisposeAsync();
    }

    /// <summary>An app that subscribes to the topic (and the dead-letter topic, when declared) and hosts a test actor type.</summary>
    private sealed class TestApp(Func<string, IResult> answer) : IAsyncDisposable
    {
        private readonly ConcurrentQueue<string> _received = new();
        private readonly ConcurrentQueue<string> _deadLetters = new();
        private readonly ConcurrentQueue<string> _actorLog = new();
        private readonly SemaphoreSlim _actorLogged = new(0);
        private WebApplication? _app;
        private int _inFlight;
        private int _mostInFlight;
        private int _insideActor;
        private int _mostInsideActor;

        public Sidecar Sidecar { get; private set; } = null!;

        public IReadOnlyCollection<string> Received => _received;

        public IReadOnlyCollection<string> DeadLetters => _deadLetters;

        public int MostInFlight => _mostInFlight;

        public int MostInsideOneActor => _mostInsideActor;

        public IReadOnlyList<string> ActorLog => [.. _actorLog];

        /// <summary>Awaited inside each delivery, with the deliveries then in the app.</summary>
        public Func<int, Task> OnArrival { get; set; } = _ => Task.CompletedTask;

        /// <summary>Awaited inside each actor call, with its path and the calls then inside the actor.</summary>
        public Func<string, int, Task> OnActorCall { get; set; } = (_, _) => Task.CompletedTask;

        public TaskCompletionSource FirstEntered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource SecondEntered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task WaitForActorLogAsync(int entries)
        {
            while (_actorLog.Count < entries) await _actorLogged.WaitAsync(Patience);
        }

        public async Task StartAsync(SharedComponents components, string? deadLetterTopic, string? actorType)
        {
            var url = new Uri($"http://127.0.0.1:{Sidecar.FreePort()}/");
            Sidecar = await Sidecar.StartAsync("test-app", url, components);
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls(url.ToString());
            _app = builder.Build();
            _app.MapGet("/health", () => Results.Ok());
            var subscriptions = new List<object> { new { pubsubname = PubSub, topic = Topic, route = "/messages", deadLetterTopic } };
            if (deadLetterTopic is not null) subscriptions.Add(new { pubsubname = PubSub, topic = deadLetterTopic, route = "/dead-letters" });
            _app.MapGet("/dapr/subscribe", () => Results.Json(subscriptions));
            _app.MapGet("/dapr/config", () => Results.Json(new { entities = actorType is null ? Array.Empty<string>() : [actorType] }));
            _app.MapPost("/messages", async (HttpRequest request) =>
            {
                using var reader = new StreamReader(request.Body);
                string body = await reader.ReadToEndAsync();
                _received.Enqueue(body);
                int inFlight = Interlocked.Increment(ref _inFlight);
                Raise(ref _mostInFlight, inFlight);
                try
                {
                    await OnArrival(inFlight);
                    return answer(body);
                }
                finally
                {
                    Interlocked.Decrement(ref _inFlight);
                }
            });
            _app.MapPost("/dead-letters", async (HttpRequest request) =>
            {
                using var reader = new StreamReader(request.Body);
                _deadLetters.Enqueue(await reader.ReadToEndAsync());
                return Results.Ok();
            });
            _app.MapMethods("/actors/{type}/{id}/method/{**rest}", ["PUT"], async (HttpRequest request, string rest) =>
            {
                string name = rest[(rest.LastIndexOf('/') + 1)..];
                int inside = Interlocked.Increment(ref _insideActor);
                Raise(ref _mostInsideActor, inside);
                Log("enter " + name);
                if (name == "second") SecondEntered.TrySetResult();
                FirstEntered.TrySetResult();
                try
                {
                    await OnActorCall(request.Path.Value!, inside);
                }
                finally
                {
                    Interlocked.Decrement(ref _insideActor);
                    Log("leave " + name);
                }
                return Results.Ok();
            });
            await _app.StartAsync();
            await Sidecar.AttachAppAsync(Patience);
        }

        private void Log(string entry)
        {
            _actorLog.Enqueue(entry);
            _actorLogged.Release();
        }

        private static void Raise(ref int most, int value)
        {
            int seen;
            while ((seen = Volatile.Read(ref most)) < value && Interlocked.CompareExchange(ref most, value, seen) != seen)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Sidecar.DisposeAsync();
            if (_app is not null) await _app.DisposeAsync();
        }
    }
}
