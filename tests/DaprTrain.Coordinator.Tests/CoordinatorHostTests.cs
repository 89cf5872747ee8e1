using DaprTrain.Tests.Shared;
using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace DaprTrain.Coordinator.Tests;

public sealed class CoordinatorHostTests : IDisposable
{
    private readonly WebApplicationFactory<Program> _factory = new WebApplicationFactory<Program>()
        .WithWebHostBuilder(b => b.UseSetting("APP_API_TOKEN", "s3cret").UseSetting("Job:Secret", JobSecret));

    private const string JobSecret = "a-job-secret-for-tests";

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task Health_answers_without_a_sidecar_and_says_it_waits_for_one()
    {
        var client = _factory.CreateClient();
        var response = await client.GetAsync("/health");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.Content.ReadAsStringAsync()).Should().Contain("coordinator").And.Contain("waiting for the Dapr sidecar");
    }

    [Fact]
    public async Task Calls_without_the_api_token_get_401_and_with_it_the_actor_config()
    {
        var client = _factory.CreateClient();
        var anonymous = await client.GetAsync("/dapr/config");
        anonymous.StatusCode.Should().Be(HttpStatusCode.Unauthorized);

        client.DefaultRequestHeaders.Add("dapr-api-token", "wrong");
        (await client.GetAsync("/dapr/config")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);

        client.DefaultRequestHeaders.Remove("dapr-api-token");
        client.DefaultRequestHeaders.Add("dapr-api-token", "s3cret");
        var config = await client.GetAsync("/dapr/config");
        config.StatusCode.Should().Be(HttpStatusCode.OK);
        (await config.Content.ReadAsStringAsync()).Should().Contain("JobCoordinatorActor");
    }

    [Fact]
    public void Invalid_options_stop_the_host_at_start()
    {
        using var bad = new WebApplicationFactory<Program>().WithWebHostBuilder(b => b.UseSetting("Coordinator:Shards", "0"));
        var act = () => bad.CreateClient();
        act.Should().Throw<Microsoft.Extensions.Options.OptionsValidationException>().WithMessage("*Shards*");
    }

    [Theory]
    [InlineData("ps", false)]
    [InlineData("p2p", true)]
    [InlineData("p2p-scatter", true)]
    public void The_jobs_topology_decides_who_writes_checkpoints(string topology, bool workersWrite)
    {
        using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(b => b.UseSetting("Job:Topology", topology).UseSetting("Job:Secret", JobSecret));
        factory.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value.WorkersWriteCheckpoints.Should().Be(workersWrite);
    }

    [Fact]
    public async Task An_unknown_topology_stops_the_host_at_start_and_names_the_known_ones()
    {
        var failure = await HostStartup.FailureAsync("DaprTrain.Coordinator", b => b.AddCoordinator(), [new("Job:Topology", "ring"), new("Job:Secret", JobSecret)]);
        failure.Should().BeOfType<OptionsValidationException>().Which.Message.Should().Match("*'ring' is not a topology; known: ps, p2p, p2p-scatter*");
    }

    [Fact]
    public void The_coordinator_ships_neither_the_engine_nor_libtorch()
    {
        // What the coordinator's image would carry: its dependency manifest, as the build wrote it.
        string deps = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "DaprTrain.Coordinator.deps.json"));
        deps.Should().Contain("DaprTrain.Coordination", "it hosts the membership domain");
        deps.Should().NotContain("TorchSharp").And.NotContain("DaprTrain.Engine").And.NotContain("DaprTrain.Training");
    }

    /// <summary>
    /// Issue 13 item 6: what daprd sends to the dead-letter topic reaches the coordinator's subscription, which answers
    /// SUCCESS whatever it is (a refused dead letter would come back or be lost) and shows it on GET /dead-letters.
    /// </summary>
    [Fact]
    public async Task Dead_letters_are_taken_counted_per_topic_and_publisher_and_shown_newest_first()
    {
        var client = _factory.CreateClient();
        client.DefaultRequestHeaders.Add("dapr-api-token", "s3cret");
        var subscriptions = await client.GetStringAsync("/dapr/subscribe");
        subscriptions.Should().Contain("\"topic\":\"dead-letters\"").And.Contain("\"route\":\"dead-letters\"");

        async Task<string> Post(string body)
        {
            using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/cloudevents+json");
            var response = await client.PostAsync("/dead-letters", content);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            return await response.Content.ReadAsStringAsync();
        }
        string Event(string id, string source) => $$"""{"id":"{{id}}","source":"{{source}}","topic":"gradients","pubsubname":"gradients","datacontenttype":"application/octet-stream","data_base64":"AAEC"}""";
        (await Post(Event("first", "worker-2"))).Should().Contain("SUCCESS");
        await Post(Event("second", "worker-2"));
        await Post(Event("third", "mallory"));
        await Post(Event("second", "worker-2"));
        (await Post("not json at all")).Should().Contain("SUCCESS", "a dead letter that is not even a CloudEvent is still counted, never refused");
        await Post("{\"id\":\"" + new string('x', 100_000) + "\"}");
        using (var badUtf8 = new ByteArrayContent([.. "{\"id\":\"a"u8, 0xC3, 0x28, .. "\"}"u8]))
        {
            badUtf8.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/cloudevents+json");
            (await client.PostAsync("/dead-letters", badUtf8)).StatusCode.Should().Be(HttpStatusCode.OK, "a string that is not UTF-8 was answered 500");
        }

        using var doc = System.Text.Json.JsonDocument.Parse(await client.GetStringAsync("/dead-letters"));
        var root = doc.RootElement;
        root.GetProperty("total").GetInt64().Should().Be(6, "the second delivery of 'second' (another subscriber's, or a redelivery) is the same dead letter");
        root.GetProperty("deliveries").GetInt64().Should().Be(7);
        var groups = root.GetProperty("byTopicAndSource").EnumerateArray().Select(g => (g.GetProperty("topic").GetString(), g.GetProperty("source").GetString(), g.GetProperty("count").GetInt64())).ToList();
        groups.Should().Equal(("(unknown)", "(unknown)", 3L), ("gradients", "worker-2", 2L), ("gradients", "mallory", 1L));
        var recent = root.GetProperty("recent").EnumerateArray().ToList();
        recent.Select(r => r.GetProperty("id").GetString()).Should().Equal("", "", "", "third", "second", "first");
        recent[0].GetProperty("problem").GetString().Should().Contain("not valid UTF-8");
        recent[2].GetProperty("problem").GetString().Should().StartWith("not a CloudEvent");
        recent[1].GetProperty("bytes").GetInt32().Should().BeGreaterThan(100_000, "an id longer than any a sidecar writes is not kept, only counted");
    }

    [Fact]
    public void The_dead_letter_ledger_keeps_a_bounded_number_of_letters_and_groups()
    {
        var ledger = new DaprTrain.Dapr.Hosting.DeadLetterLedger(Microsoft.Extensions.Logging.Abstractions.NullLogger<DaprTrain.Dapr.Hosting.DeadLetterLedger>.Instance, TimeProvider.System);
        for (int i = 0; i < 1000; i++)
        {
            ledger.Record(System.Text.Encoding.UTF8.GetBytes($$"""{"id":"m{{i}}","source":"app-{{i}}","topic":"t-{{i}}"}"""), "application/cloudevents+json");
        }
        ledger.Total.Should().Be(1000);
        using var doc = System.Text.Json.JsonDocument.Parse(System.Text.Json.JsonSerializer.Serialize(ledger.Snapshot()));
        doc.RootElement.GetProperty("recent").GetArrayLength().Should().Be(DaprTrain.Dapr.Hosting.DeadLetterLedger.Capacity);
        var groups = doc.RootElement.GetProperty("byTopicAndSource").EnumerateArray().ToList();
        groups.Should().HaveCount(DaprTrain.Dapr.Hosting.DeadLetterLedger.MaxGroups + 1, "each distinct publisher and topic up to the bound, then one group for the rest");
        groups.Sum(g => g.GetProperty("count").GetInt64()).Should().Be(1000);
        groups[0].GetProperty("topic").GetString().Should().Be("(other)");
    }

    [Fact]
    public async Task The_coordinator_does_not_start_without_the_jobs_secret()
    {
        var failure = await HostStartup.FailureAsync("DaprTrain.Coordinator", b => b.AddCoordinator(), []);
        failure.Should().BeOfType<OptionsValidationException>().Which.Message.Should().Match("*Job:Secret (JOB__SECRET) must be set*");
    }

    [Fact]
    public void The_coordinator_admits_the_workers_job_workers_names()
    {
        using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(b => b.UseSetting("Job:Secret", JobSecret).UseSetting("Job:Workers", "5"));
        var options = factory.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
        options.Workers.Should().Be(5);
        var admission = options.Admission()!;
        admission.Admits("worker-5").Should().BeTrue();
        admission.Admits("worker-6").Should().BeFalse();
        admission.Admits("mallory").Should().BeFalse();
    }
}
