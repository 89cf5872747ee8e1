using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using DaprTrain.Dapr;
using DaprTrain.Dapr.Hosting;
using DaprTrain.Coordination;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Nodes;
using DaprTrain.ParameterServer;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using DaprTrain.Training.Parameters;
using DaprTrain.Worker;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace DaprTrain.Services.Tests;

/// <summary>The worker's subscription route, sent exactly what daprd sends: CloudEvents with data_base64 or data.</summary>
public sealed class SubscriptionTests : IDisposable
{
    private const string Token = "t0ken";
    private static readonly TrainerOptions Trainer = new("mlp", new OptimizerSettings(OptimizerKind.Adam, 1e-3), 16, 1);
    private static readonly TrainingData Data = TrainingData.Synthetic(400, 1, 100);
    private static readonly MembershipView View = new(1, ["worker-1", "worker-2"], new Dictionary<int, string> { [0] = "worker-1", [1] = "worker-2" }, "worker-1", []);

    private readonly WebApplicationFactory<WorkerRuntime> _worker = new WebApplicationFactory<WorkerRuntime>().WithWebHostBuilder(b => b
        .UseSetting("Job:DisableTrainingLoop", "true")
        .UseSetting("Job:Topology", "p2p")
        .UseSetting("Job:WorkerId", "worker-1")
        .UseSetting("Job:Workers", "2")
        .UseSetting("APP_API_TOKEN", Token));

    public void Dispose() => _worker.Dispose();

    private HttpClient Client(bool started = true)
    {
        var client = _worker.CreateClient();
        client.DefaultRequestHeaders.Add(ApiTokenMiddleware.Header, Token);
        if (started)
        {
            var node = new WorkerNode("worker-1", "daprtrain", Trainer, Data, NullLogger.Instance);
            node.ApplyView(View, [Data.TrainIndices[..150], Data.TrainIndices[150..]]);
            _worker.Services.GetRequiredService<WorkerRuntime>().Start(node);
        }
        return client;
    }

    private int ParameterCount => _worker.Services.GetRequiredService<WorkerRuntime>().Use(n => n.ParameterCount);

    private static byte[] Gradient(string job = "daprtrain", long round = 1, int? length = null, float fill = 0.01f, int count = 101_770) =>
        WireCodec.Encode(new WireMessage(MessageKind.Gradient, job, 0, round, "worker-2", 16, 0, 0, Enumerable.Repeat(fill, length ?? count).ToArray()));

    /// <summary>A binary CloudEvent as daprd delivers it: data_base64 and the datacontenttype of the publish.</summary>
    private static HttpContent BinaryEvent(byte[] data) => Envelope(new Dictionary<string, object>
    {
        ["datacontenttype"] = "application/octet-stream",
        ["data_base64"] = Convert.ToBase64String(data),
    });

    private static HttpContent Envelope(Dictionary<string, object> payload)
    {
        var envelope = new Dictionary<string, object>
        {
            ["id"] = Guid.NewGuid().ToString(),
            ["specversion"] = "1.0",
            ["source"] = "worker-2",
            ["type"] = "com.dapr.event.sent",
            ["topic"] = "gradients",
            ["pubsubname"] = "gradients",
            ["traceid"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ["tracestate"] = "",
            ["time"] = DateTime.UtcNow.ToString("O"),
        };
        foreach (var (key, value) in payload) envelope[key] = value;
        var content = new StringContent(JsonSerializer.Serialize(envelope), Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/cloudevents+json");
        return content;
    }

    private static async Task<string> StatusOf(HttpResponseMessage response)
    {
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("status").GetString()!;
    }

    private async Task<string> Deliver(HttpClient client, byte[] message)
    {
        string status = "";
        foreach (var chunk in ChunkCodec.Split(message))
        {
            status = await StatusOf(await client.PostAsync(WorkerHosting.GradientsRoute, BinaryEvent(chunk)));
        }
        return status;
    }

    [Fact]
    public async Task A_good_gradient_is_applied_and_its_duplicate_acknowledged()
    {
        var client = Client();
        (await Deliver(client, Gradient())).Should().Be("SUCCESS");
        _worker.Services.GetRequiredService<WorkerRuntime>().Use(n => n.HeldSenders(1)).Should().Equal("worker-2");
        (await Deliver(client, Gradient())).Should().Be("SUCCESS", "a redelivered message is a known duplicate");
        _worker.Services.GetRequiredService<WorkerRuntime>().Use(n => n.Counters.Applied).Should().Be(1);
    }

    public static TheoryData<string> PoisonKinds() => ["bad-checksum", "unknown-job", "stale-round", "future-round", "wrong-length", "nan", "not-a-chunk"];

    [Theory]
    [MemberData(nameof(PoisonKinds))]
    public async Task Poison_messages_are_dropped_not_retried(string kind)
    {
        var client = Client();
        if (kind == "stale-round")
        {
            _worker.Services.GetRequiredService<WorkerRuntime>().Use(n =>
            {
                n.ComputeGradient();
                n.ApplyDecision(new RoundDecision(0, 1, ["worker-1"], ["worker-1"]));
                return 0;
            });
        }
        byte[] body = kind switch
        {
            "unknown-job" => ChunkCodec.Split(Gradient(job: "other"))[0],
            "stale-round" => ChunkCodec.Split(Gradient(round: 1))[0],
            "future-round" => ChunkCodec.Split(Gradient(round: 50))[0],
            "wrong-length" => ChunkCodec.Split(Gradient(length: 10))[0],
            "nan" => ChunkCodec.Split(Gradient(fill: float.NaN))[0],
            "not-a-chunk" => Encoding.UTF8.GetBytes("{\"hello\":\"world\"}"),
            _ => CorruptChunk(),
        };
        var status = await StatusOf(await client.PostAsync(WorkerHosting.GradientsRoute, BinaryEvent(body)));
        status.Should().Be("DROP");
        _worker.Services.GetRequiredService<WorkerRuntime>().Use(n => n.HeldSenders(n.OpenRound)).Should().NotContain("worker-2");
    }

    private static byte[] CorruptChunk()
    {
        var chunk = ChunkCodec.Split(Gradient())[0];
        chunk[200] ^= 1;
        return chunk;
    }

    [Fact]
    public async Task A_delivery_over_the_chunk_size_is_dropped()
    {
        var status = await StatusOf(await Client().PostAsync(WorkerHosting.GradientsRoute, BinaryEvent(new byte[600 * 1024])));
        status.Should().Be("DROP");
    }

    [Fact]
    public async Task A_json_data_event_on_the_binary_topic_is_dropped()
    {
        var client = Client();
        var response = await client.PostAsync(WorkerHosting.GradientsRoute, Envelope(new Dictionary<string, object>
        {
            ["datacontenttype"] = "application/json",
            ["data"] = new { round = 1, gradient = new[] { 0.1, 0.2 } },
        }));
        (await StatusOf(response)).Should().Be("DROP");
    }

    [Fact]
    public async Task A_delivery_before_the_node_is_ready_is_retried()
    {
        var client = Client(started: false);
        var status = await StatusOf(await client.PostAsync(WorkerHosting.GradientsRoute, BinaryEvent(ChunkCodec.Split(Gradient())[0])));
        status.Should().Be("RETRY");
    }

    [Fact]
    public async Task Deliveries_without_or_with_a_wrong_api_token_get_401()
    {
        var anonymous = _worker.CreateClient();
        (await anonymous.PostAsync(WorkerHosting.GradientsRoute, BinaryEvent([1, 2, 3]))).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        anonymous.DefaultRequestHeaders.Add(ApiTokenMiddleware.Header, "guess");
        (await anonymous.PostAsync(WorkerHosting.GradientsRoute, BinaryEvent([1, 2, 3]))).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await anonymous.GetAsync(DaprHosting.HealthPath)).StatusCode.Should().Be(HttpStatusCode.OK, "health stays open for probes");
    }

    [Fact]
    public async Task Dapr_subscribe_lists_the_topic_route_and_pubsub_of_the_components()
    {
        var json = await Client(started: false).GetStringAsync("/dapr/subscribe");
        using var doc = JsonDocument.Parse(json);
        // daprd matches these keys case-insensitively; the SDK writes pubsubName.
        var subscription = doc.RootElement.EnumerateArray().Should().ContainSingle().Subject.EnumerateObject()
            .ToDictionary(p => p.Name.ToLowerInvariant(), p => p.Value.GetString());
        subscription["pubsubname"].Should().Be(DaprTrain.Contracts.DaprComponents.PubSub);
        subscription["topic"].Should().Be(DaprTrain.Contracts.DaprTopics.Gradients);
        subscription["route"].Should().Be("messages/gradients");
    }

    [Fact]
    public async Task The_parameter_server_subscribes_to_gradients_and_ps_workers_to_weights()
    {
        using var server = new WebApplicationFactory<ServerRuntime>().WithWebHostBuilder(b => b.UseSetting("Job:DisableTrainingLoop", "true"));
        var serverSubscriptions = await server.CreateClient().GetStringAsync("/dapr/subscribe");
        serverSubscriptions.Should().Contain("\"topic\":\"gradients\"").And.Contain("\"route\":\"messages/gradients\"");

        using var psWorker = new WebApplicationFactory<WorkerRuntime>().WithWebHostBuilder(b => b.UseSetting("Job:DisableTrainingLoop", "true").UseSetting("Job:Topology", "ps"));
        var workerSubscriptions = await psWorker.CreateClient().GetStringAsync("/dapr/subscribe");
        workerSubscriptions.Should().Contain("\"topic\":\"weights\"").And.Contain("\"route\":\"messages/weights\"");
    }

    [Fact]
    public void Invalid_job_options_stop_the_worker_at_start()
    {
        using var bad = new WebApplicationFactory<WorkerRuntime>().WithWebHostBuilder(b => b.UseSetting("Job:DisableTrainingLoop", "true").UseSetting("Job:WorkerId", "worker-9"));
        var act = () => bad.CreateClient();
        act.Should().Throw<Microsoft.Extensions.Options.OptionsValidationException>().WithMessage("*worker-9 is beyond Workers*");
    }
}

public class HealthTests
{
    [Fact]
    public async Task Worker_and_server_answer_health_without_a_sidecar_and_say_they_wait_for_it()
    {
        using var worker = new WebApplicationFactory<WorkerRuntime>().WithWebHostBuilder(b => b.UseSetting("Job:DisableTrainingLoop", "true"));
        (await worker.CreateClient().GetStringAsync(DaprHosting.HealthPath)).Should().Contain("worker-1").And.Contain("waiting for the Dapr sidecar");
        using var server = new WebApplicationFactory<ServerRuntime>().WithWebHostBuilder(b => b.UseSetting("Job:DisableTrainingLoop", "true"));
        (await server.CreateClient().GetStringAsync(DaprHosting.HealthPath)).Should().Contain("parameter-server").And.Contain("waiting for the Dapr sidecar");
        using var idle = new WebApplicationFactory<ServerRuntime>().WithWebHostBuilder(b => b.UseSetting("Job:DisableTrainingLoop", "true").UseSetting("Job:Topology", "p2p"));
        (await idle.CreateClient().GetStringAsync(DaprHosting.HealthPath)).Should().Contain("idle");
        (await idle.CreateClient().GetStringAsync("/dapr/subscribe")).Should().Be("[]");
    }
}
