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
    [InlineData("Job:Attack", "alie", "*alie needs the honest gradients*")]
    [InlineData("Job:Attack", "signflip:-1", "*Job:Attack*the scale S must be above 0*")]
    public void A_bad_rule_or_attack_stops_the_worker_at_start(string key, string value, string message)
    {
        using var bad = new WebApplicationFactory<WorkerRuntime>().WithWebHostBuilder(b => b.UseSetting("Job:DisableTrainingLoop", "true").UseSetting(key, value));
        var act = () => bad.CreateClient();
        act.Should().Throw<OptionsValidationException>().WithMessage(message);
    }

    [Fact]
    public void A_whole_vector_rule_with_p2p_scatter_stops_the_server_at_start()
    {
        using var bad = new WebApplicationFactory<ServerRuntime>().WithWebHostBuilder(b => b.UseSetting("Job:DisableTrainingLoop", "true")
            .UseSetting("Job:Topology", "p2p-scatter").UseSetting("Job:Aggregator", "bulyan"));
        var act = () => bad.CreateClient();
        act.Should().Throw<OptionsValidationException>().WithMessage("*bulyan:0 compares whole gradients*p2p-scatter*");
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
}
