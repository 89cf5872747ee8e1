using DaprTrain.Simulation.Faults;

namespace DaprTrain.Engine.Tests;

public sealed class FaultPlanTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-faults-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Parses_every_item_of_the_grammar()
    {
        var plan = FaultPlan.Parse(["kill:worker-2@round=30", "kill:ps@round=20", "slow:worker-1=200ms", "slow:worker-3=1.5s@round=4",
            "drop=0.05", "duplicate=0.1", "delay=0.2:50ms", "reorder", "restart:worker-2@round=40"]);
        plan.NodeFaults.Should().Equal(
            new NodeFault(NodeFaultKind.Kill, "worker-2", 30),
            new NodeFault(NodeFaultKind.Kill, "ps", 20),
            new NodeFault(NodeFaultKind.Slow, "worker-1", 1, 200),
            new NodeFault(NodeFaultKind.Slow, "worker-3", 4, 1500),
            new NodeFault(NodeFaultKind.Restart, "worker-2", 40));
        plan.Bus.DropProbability.Should().Be(0.05);
        plan.Bus.DuplicateProbability.Should().Be(0.1);
        plan.Bus.DelayProbability.Should().Be(0.2);
        plan.Bus.DelayMs.Should().Be(50);
        plan.Bus.Reorder.Should().BeTrue();
        plan.Validate(workers: 4, hasParameterServer: true, rounds: 100);
    }

    [Theory]
    [InlineData("kill:worker-2", "needs a round")]
    [InlineData("kill:worker-0@round=3", "not a fault item")]
    [InlineData("drop=1.5", "not a fraction")]
    [InlineData("slow:worker-1=fast", "not a duration")]
    [InlineData("slow:worker-1", "needs a delay")]
    [InlineData("explode:worker-1@round=2", "not a fault item")]
    [InlineData("kill:worker-1@round=0", "at least 1")]
    public void Invalid_items_are_errors_that_show_the_grammar(string item, string problem)
    {
        var act = () => FaultPlan.Parse([item]);
        act.Should().Throw<FaultSpecException>().Where(e => e.Message.Contains(item) && e.Message.Contains(problem) && e.Message.Contains("fault grammar"));
    }

    [Theory]
    [InlineData("kill:ps@round=3", false, "no parameter server")]
    [InlineData("kill:worker-9@round=3", true, "has 4 workers")]
    [InlineData("restart:worker-2@round=3", true, "needs an earlier kill")]
    [InlineData("kill:worker-1@round=500", true, "only 100 rounds")]
    public void Plans_that_do_not_fit_the_job_are_rejected(string item, bool hasPs, string problem)
    {
        var act = () => FaultPlan.Parse([item]).Validate(4, hasPs, 100);
        act.Should().Throw<FaultSpecException>().WithMessage($"*{problem}*");
    }

    [Fact]
    public void Killing_every_worker_is_rejected()
    {
        var act = () => FaultPlan.Parse(["kill:worker-1@round=2", "kill:worker-2@round=3"]).Validate(2, false, 10);
        act.Should().Throw<FaultSpecException>().WithMessage("*every worker*");
    }

    [Fact]
    public void Scenario_files_have_names_comments_and_errors_with_line_numbers()
    {
        string good = Path.Combine(_dir, "flaky.txt");
        File.WriteAllLines(good, ["name: flaky network", "# lose and repeat messages", "drop=0.05   # five percent", "", "duplicate=0.1"]);
        var plan = FaultPlan.ParseFile(good);
        plan.Name.Should().Be("flaky network");
        plan.Bus.DropProbability.Should().Be(0.05);

        string bad = Path.Combine(_dir, "bad.txt");
        File.WriteAllLines(bad, ["drop=0.05", "kill:worker-2@round=abc"]);
        var act = () => FaultPlan.ParseFile(bad);
        act.Should().Throw<FaultSpecException>().WithMessage($"{bad}, line 2:*kill:worker-2@round=abc*");

        var missing = () => FaultPlan.ParseFile(Path.Combine(_dir, "nope.txt"));
        missing.Should().Throw<FaultSpecException>().WithMessage("*does not exist*");
    }
}
