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
    public void An_unknown_topology_stops_the_host_at_start_and_names_the_known_ones()
    {
        using var bad = new WebApplicationFactory<Program>().WithWebHostBuilder(b => b.UseSetting("Job:Topology", "ring"));
        var act = () => bad.CreateClient();
        act.Should().Throw<OptionsValidationException>().WithMessage("*'ring' is not a topology; known: ps, p2p, p2p-scatter*");
    }

    [Fact]
    public void The_coordinator_ships_neither_the_engine_nor_libtorch()
    {
        // What the coordinator's image would carry: its dependency manifest, as the build wrote it.
        string deps = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "DaprTrain.Coordinator.deps.json"));
        deps.Should().Contain("DaprTrain.Coordination", "it hosts the membership domain");
        deps.Should().NotContain("TorchSharp").And.NotContain("DaprTrain.Engine").And.NotContain("DaprTrain.Training");
    }

    [Fact]
    public void The_coordinator_does_not_start_without_the_jobs_secret()
    {
        using var open = new WebApplicationFactory<Program>();
        var start = () => open.CreateClient();
        start.Should().Throw<OptionsValidationException>().WithMessage("*Job:Secret (JOB__SECRET) must be set*");
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
