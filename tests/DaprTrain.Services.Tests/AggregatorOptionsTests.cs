using DaprTrain.Tests.Shared;
using DaprTrain.Dapr;
using DaprTrain.Engine.Aggregation;
using DaprTrain.ParameterServer;
using DaprTrain.Worker;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace DaprTrain.Services.Tests;

/// <summary>Job:Aggregator and Job:Attack are validated when a service starts, and reach the node it runs.</summary>
public class AggregatorOptionsTests
{
    [Theory]
    [InlineData("Job:Aggregator", "avg", "*Job:Aggregator: aggregator 'avg' is not known*")]
    [InlineData("Job:Aggregator", "krum:1", "*krum needs n > 2f + 2 does not hold for n = 3, f = 1*")]
    [InlineData("Job:Attack", "alie:101", "*Job:Attack*z must be from 0 to 100*")]
    [InlineData("Job:Attack", "signflip:-1", "*Job:Attack*the scale S must be above 0*")]
    [InlineData("Job:Compress", "zip", "*Job:Compress: compression 'zip' is not known; codecs: none | fp16*")]
    [InlineData("Job:Compress", "topk:2", "*Job:Compress: compression 'topk:2': topk needs a ratio above 0 and at most 1*")]
    public async Task A_bad_rule_or_attack_stops_the_worker_at_start(string key, string value, string message)
    {
        var failure = await HostStartup.FailureAsync("DaprTrain.Worker", b => b.AddWorker(), [new("Job:DisableTrainingLoop", "true"), new(key, value)]);
        failure.Should().BeOfType<OptionsValidationException>().Which.Message.Should().Match(message);
    }

    [Fact]
    public async Task A_whole_vector_rule_with_p2p_scatter_stops_the_server_at_start()
    {
        var failure = await HostStartup.FailureAsync("DaprTrain.ParameterServer", b => b.AddParameterServer(),
            [new("Job:DisableTrainingLoop", "true"), new("Job:Topology", "p2p-scatter"), new("Job:Aggregator", "bulyan")]);
        failure.Should().BeOfType<OptionsValidationException>().Which.Message.Should().Match("*bulyan:0 compares whole gradients*p2p-scatter*");
    }

    [Fact]
    public void A_valid_rule_and_attack_resolve_for_the_job()
    {
        using var worker = new WebApplicationFactory<WorkerRuntime>().WithWebHostBuilder(b => b.UseSetting("Job:DisableTrainingLoop", "true")
            .UseSetting("Job:Workers", "7").UseSetting("Job:Aggregator", "krum").UseSetting("Job:Attack", "gaussian:50@round=3"));
        worker.CreateClient();
        worker.Services.GetRequiredService<IOptions<TrainingJobOptions>>().Value.ResolvedAggregator().Should().Be(new AggregationRule(AggregatorKind.Krum, 2));
        worker.Services.GetRequiredService<IOptions<WorkerOptions>>().Value.ParsedAttack().Should().Be(new GradientAttack(AttackKind.Gaussian, 50, 3));
    }

    [Fact]
    public async Task A_bad_codec_stops_the_server_at_start_and_a_valid_one_reaches_the_worker_node()
    {
        var failure = await HostStartup.FailureAsync("DaprTrain.ParameterServer", b => b.AddParameterServer(), [new("Job:DisableTrainingLoop", "true"), new("Job:Compress", "qsgd:0")]);
        failure.Should().BeOfType<OptionsValidationException>().Which.Message.Should().Match("*Job:Compress: compression 'qsgd:0': qsgd needs a number of levels from 1 to 127*");

        using var worker = new WebApplicationFactory<WorkerRuntime>().WithWebHostBuilder(b => b.UseSetting("Job:DisableTrainingLoop", "true").UseSetting("Job:Compress", "topk:0.01"));
        worker.CreateClient();
        worker.Services.GetRequiredService<IOptions<TrainingJobOptions>>().Value.Compression().Should().Be(new DaprTrain.Engine.Compression.CompressionSpec(DaprTrain.Engine.Compression.CompressionKind.TopK, 0.01));
    }
}
