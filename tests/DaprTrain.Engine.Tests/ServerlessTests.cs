using DaprTrain.Coordination;
using DaprTrain.Simulation;
using DaprTrain.Simulation.Compute;
using DaprTrain.Simulation.Faults;

namespace DaprTrain.Engine.Tests;

/// <summary>
/// --compute serverless: the gradient of a worker's batch fanned out to K function invocations. The compute is real, the
/// platform around it modelled; these tests pin what must hold whatever the model's numbers: the arithmetic, determinism
/// under retried invocations, what a cold start is, and how billing rounds.
/// </summary>
public class ServerlessTests
{
    private static readonly PlatformProfile Lambda = PlatformProfile.Load(null, "aws-lambda");

    private static JobOptions Serverless(Topology topology, long rounds, int functions, PlatformProfile? platform = null, params string[] faults) =>
        Jobs.Options(topology, rounds, faults) with { Compute = ComputeMode.Serverless, Serverless = new ServerlessOptions(functions, platform ?? Lambda) };

    [Theory]
    [InlineData(Topology.PeerToPeer)]
    [InlineData(Topology.ParameterServer)]
    public async Task One_function_per_worker_gives_the_weights_of_a_vm_worker_bit_for_bit(Topology topology)
    {
        var vm = await Jobs.RunAsync(Jobs.Options(topology, 30));
        var one = await Jobs.RunAsync(Serverless(topology, 30, functions: 1));

        // One share is the whole batch, and its weight in the combination is exactly 1.
        one.FinalWeights.Should().Equal(vm.FinalWeights);
        one.Functions!.Invocations.Should().Be(30 * 4);
        vm.Functions.Should().BeNull();
    }

    [Fact]
    public async Task Eight_functions_reach_the_accuracy_of_one_and_of_a_vm_worker_within_half_a_point()
    {
        var vm = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeer, 150));
        var one = await Jobs.RunAsync(Serverless(Topology.PeerToPeer, 150, functions: 1));
        var eight = await Jobs.RunAsync(Serverless(Topology.PeerToPeer, 150, functions: 8));

        eight.FinalAccuracy.Should().BeApproximately(one.FinalAccuracy, 0.005);
        eight.FinalAccuracy.Should().BeApproximately(vm.FinalAccuracy, 0.005);
        eight.FinalAccuracy.Should().BeGreaterThanOrEqualTo(0.93);
        // Shares of 8 samples average to the batch's gradient only up to float rounding: not the same bits.
        eight.FinalWeights.Should().NotEqual(one.FinalWeights);
        eight.Rounds.Should().OnlyContain(r => r.Included == 4, "a fan-out never makes a worker miss its round");
    }

    [Theory]
    [InlineData(Topology.PeerToPeer)]
    [InlineData(Topology.PeerToPeerScatter)]
    [InlineData(Topology.ParameterServer)]
    public async Task Crashing_invocations_change_time_and_cost_but_not_the_weights(Topology topology)
    {
        var clean = await Jobs.RunAsync(Serverless(topology, 30, functions: 4));
        var crashing = await Jobs.RunAsync(Serverless(topology, 30, functions: 4, faults: "fail:function@p=0.1"));

        crashing.Functions!.Crashes.Should().BePositive();
        crashing.FinalWeights.Should().Equal(clean.FinalWeights, "a retried invocation computes the same share on the same weights, and its gradient counts once");
        crashing.Billing.FunctionsUsd.Should().BeGreaterThan(clean.Billing.FunctionsUsd, "a crashed attempt is billed up to its crash");
        crashing.Functions.Invocations.Should().Be(clean.Functions!.Invocations + crashing.Functions.Retries - clean.Functions.Retries);
    }

    [Fact]
    public async Task Timeouts_are_billed_to_the_timeout_and_retried()
    {
        var clean = await Jobs.RunAsync(Serverless(Topology.PeerToPeer, 20, functions: 2));
        var hanging = await Jobs.RunAsync(Serverless(Topology.PeerToPeer, 20, functions: 2, faults: "timeout:function@p=0.1"));

        hanging.Functions!.Timeouts.Should().BePositive();
        hanging.FinalWeights.Should().Equal(clean.FinalWeights);
        (hanging.Functions.BilledMs - clean.Functions!.BilledMs).Should().BeGreaterThanOrEqualTo(hanging.Functions.Timeouts * Lambda.TimeoutMs);
    }

    [Fact]
    public async Task A_cold_start_is_counted_once_per_instance_start_and_never_for_a_warm_instance()
    {
        var warm = await Jobs.RunAsync(Serverless(Topology.PeerToPeer, 20, functions: 4));
        // Round 1 starts 4 workers x 4 functions at once: 16 instances, each cold once; later rounds find them warm.
        warm.Functions!.ColdStarts.Should().Be(16);
        warm.Functions.PeakInstances.Should().Be(16);
        warm.Functions.WarmStarts.Should().Be(warm.Functions.Invocations - 16);

        // An instance the platform keeps for no time at all is never warm: every invocation starts one.
        var cold = await Jobs.RunAsync(Serverless(Topology.PeerToPeer, 20, functions: 4, Lambda with { IdleTimeoutMs = 0 }));
        cold.Functions!.ColdStarts.Should().Be(cold.Functions.Invocations);
        cold.Functions.WarmStarts.Should().Be(0);
        cold.FinalWeights.Should().Equal(warm.FinalWeights);
        // Not compared: the two runs' total (virtual) times. They hold the modelled cold starts but also each run's
        // measured compute, which a loaded machine stretches by more than 19 cold starts (it failed so at load 30).
    }

    [Fact]
    public async Task A_concurrency_limit_below_the_fan_out_throttles_invocations()
    {
        var free = await Jobs.RunAsync(Serverless(Topology.PeerToPeer, 10, functions: 4));
        var limited = await Jobs.RunAsync(Serverless(Topology.PeerToPeer, 10, functions: 4, Lambda with { ConcurrencyLimit = 4 }));

        free.Functions!.Throttled.Should().Be(0);
        limited.Functions!.Throttled.Should().BePositive();
        limited.Functions.PeakInstances.Should().BeLessThanOrEqualTo(4);
        limited.FinalWeights.Should().Equal(free.FinalWeights);
        // The two runs' total times are not compared: each holds its own measured compute (see the cold-start test).
    }

    [Theory]
    [InlineData("aws-lambda", 27.4, 28)]
    [InlineData("aws-lambda", 0.2, 1)]
    [InlineData("aws-lambda", 1000, 1000)]
    [InlineData("azure-container-apps", 27.4, 1000)]
    [InlineData("azure-container-apps", 1000.5, 2000)]
    public void Billing_rounds_up_as_the_profile_says(string platform, double runMs, double billedMs)
    {
        PlatformProfile.Load(null, platform).BilledMs(runMs).Should().Be(billedMs);
    }

    [Fact]
    public void Bad_serverless_options_and_function_faults_are_refused_with_the_reason()
    {
        var tooMany = () => Serverless(Topology.PeerToPeer, 10, functions: 65).Validate();
        tooMany.Should().Throw<ArgumentException>().WithMessage("*65 functions cannot share a batch of 64 samples*");

        var onVm = () => Jobs.Options(Topology.PeerToPeer, 10, "fail:function@p=0.1").Validate();
        onVm.Should().Throw<FaultSpecException>().WithMessage("*need --compute serverless*");

        var badP = () => FaultPlan.Parse(["fail:function@p=1.5"]);
        badP.Should().Throw<FaultSpecException>().WithMessage("*'1.5' is not a fraction between 0 and 1*");

        FaultPlan.Parse(["coldstart=800ms", "timeout:function@p=0.02"]).Functions.Should().Be(new FunctionFaults(0, 0.02, 800));
        var unknown = () => PlatformProfile.Load(null, "gcp-run");
        unknown.Should().Throw<ArgumentException>().WithMessage("*no platform 'gcp-run'*aws-lambda*");
    }

    [Fact]
    public void A_profile_without_source_or_with_a_negative_price_is_refused()
    {
        var noSource = () => (Lambda with { Source = "" }).Validate("test");
        noSource.Should().Throw<InvalidDataException>().WithMessage("*must name its source and date*");
        var negative = () => (Lambda with { PricePerGbSecond = -1 }).Validate("test");
        negative.Should().Throw<InvalidDataException>().WithMessage("*pricePerGbSecond must be a non-negative number*");
    }
}
