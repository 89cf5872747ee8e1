using DaprTrain.Simulation;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Faults;

namespace DaprTrain.Engine.Tests;

/// <summary>Issue 14, items 5, 6 and 8: the fault plan checked as a whole, bounded input files, required fields, sensible ranges.</summary>
public sealed class InputValidationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-validation-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(new[] { "kill:worker-1@round=2", "kill:worker-1@round=4" }, "kill:worker-1@round=4: worker-1 is not running at round 4 (killed at round 2 and not restarted since)")]
    [InlineData(new[] { "kill:worker-1@round=2", "restart:worker-1@round=3", "restart:worker-1@round=5" }, "restart:worker-1@round=5: worker-1 is already running at round 5")]
    [InlineData(new[] { "kill:worker-1@round=5", "restart:worker-1@round=7", "kill:worker-1@round=2" }, "kill:worker-1@round=5: worker-1 is not running at round 5 (killed at round 2")]
    [InlineData(new[] { "kill:ps@round=3", "kill:ps@round=3" }, "the parameter server is killed twice in round 3")]
    public void A_plan_whose_faults_cannot_all_happen_is_rejected_as_a_whole(string[] items, string problem)
    {
        var act = () => FaultPlan.Parse(items).Validate(workers: 4, hasParameterServer: true, rounds: 100);
        act.Should().Throw<FaultSpecException>().Which.Message.Should().Contain(problem);
    }

    [Fact]
    public void Kill_restart_kill_restart_of_one_worker_is_a_valid_plan()
    {
        var act = () => FaultPlan.Parse(["kill:worker-2@round=2", "restart:worker-2@round=4", "kill:worker-2@round=6", "restart:worker-2@round=8", "kill:ps@round=5"])
            .Validate(workers: 4, hasParameterServer: true, rounds: 100);
        act.Should().NotThrow();
    }

    [Theory]
    [InlineData("drop=NaN", "'NaN' is not a fraction")]
    [InlineData("duplicate=NaN", "'NaN' is not a fraction")]
    [InlineData("delay=NaN:5ms", "'NaN' is not a fraction")]
    [InlineData("fail:function@p=NaN", "'NaN' is not a fraction")]
    [InlineData("slow:worker-1=99999999999999999999s", "longer than the longest fault duration, 1h")]
    [InlineData("slow:worker-1=3600001ms", "longer than the longest fault duration, 1h")]
    [InlineData("delay=0.5:3601s", "longer than the longest fault duration, 1h")]
    [InlineData("coldstart=7200s", "longer than the longest fault duration, 1h")]
    public void Nonsense_fault_values_are_rejected(string item, string problem)
    {
        var act = () => FaultPlan.Parse([item]);
        act.Should().Throw<FaultSpecException>().Which.Message.Should().Contain(problem);
    }

    [Fact]
    public void An_hour_long_slow_down_is_still_accepted()
    {
        FaultPlan.Parse(["slow:worker-1=3600s"]).NodeFaults.Single().DelayMs.Should().Be(3_600_000);
    }

    [Fact]
    public void A_scenario_file_error_is_marked_as_input_and_its_junk_escaped()
    {
        string file = Path.Combine(_dir, "junk.txt");
        File.WriteAllBytes(file, [.. "kill:\u001bworker"u8, 0x00, (byte)'\n']);
        var act = () => FaultPlan.ParseFile(file);
        var error = act.Should().Throw<FaultSpecException>().Which;
        error.Message.Should().Contain("kill:\\x1bworker\\x00").And.NotContain("\u001b");
    }

    [Fact]
    public void A_device_as_a_scenario_file_is_refused_quickly()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var act = () => FaultPlan.ParseFile("/dev/zero");
        act.Should().Throw<FaultSpecException>().Which.Message.Should().Contain("scenario file '/dev/zero' is larger than");
        clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(30));
    }

    [Theory]
    [InlineData("vmPerHour")]
    [InlineData("serverlessPerGbSecond")]
    [InlineData("workerMemoryGb")]
    public void A_price_table_missing_a_required_field_is_refused_naming_it(string field)
    {
        string shipped = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "config", "prices.json"));
        string path = Path.Combine(_dir, "prices.json");
        var lines = shipped.Split('\n').Where(l => !l.TrimStart().StartsWith($"\"{field}\"", StringComparison.Ordinal));
        File.WriteAllText(path, string.Join('\n', lines));
        var act = () => PriceTable.Load(path);
        act.Should().Throw<InvalidDataException>().Which.Message.Should().Contain($"price table '{path}' has no '{field}'");
    }

    [Theory]
    [InlineData(-1, 1000, "latency")]
    [InlineData(1e300, 1000, "latency")]
    [InlineData(double.NaN, 1000, "latency")]
    [InlineData(1, 0.001, "bandwidth")]
    [InlineData(1, 1e300, "bandwidth")]
    public void The_network_model_takes_only_physically_sensible_figures(double latencyMs, double bandwidthMbps, string problem)
    {
        var act = () => new NetworkModel(latencyMs, bandwidthMbps).Validate();
        act.Should().Throw<ArgumentException>().Which.Message.Should().StartWith(problem);
    }
}
