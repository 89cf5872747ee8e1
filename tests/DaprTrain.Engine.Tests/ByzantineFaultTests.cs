using DaprTrain.Engine.Aggregation;
using DaprTrain.Simulation.Faults;

namespace DaprTrain.Engine.Tests;

/// <summary>The byzantine: items of the fault grammar and what each attack does to a gradient.</summary>
public class ByzantineFaultTests
{
    [Fact]
    public void Parses_every_attack()
    {
        var plan = FaultPlan.Parse(["byzantine:worker-1=signflip", "byzantine:worker-2=gaussian:50@round=3", "byzantine:worker-3=noise",
            "byzantine:worker-4=labelflip@round=10", "byzantine:worker-5=alie", "byzantine:worker-6=zero", "byzantine:worker-7=alie:1.5", "byzantine:worker-8=signflip:4"]);
        plan.Attacks.Select(a => a.ToString()).Should().Equal("byzantine:worker-1=signflip:10", "byzantine:worker-2=gaussian:50@round=3", "byzantine:worker-3=noise:1",
            "byzantine:worker-4=labelflip@round=10", "byzantine:worker-5=alie", "byzantine:worker-6=zero", "byzantine:worker-7=alie:1.5", "byzantine:worker-8=signflip:4");
        plan.AttackOf("worker-2").Should().Be(new GradientAttack(AttackKind.Gaussian, 50, 3));
        plan.AttackOf("worker-9").Should().BeNull();
        plan.IsEmpty.Should().BeFalse();
        plan.Validate(workers: 9, hasParameterServer: false, rounds: 100);
    }

    [Theory]
    [InlineData("byzantine:worker-1=explode", "'explode' is not known")]
    [InlineData("byzantine:worker-1=signflip:-10", "the scale S must be above 0")]
    [InlineData("byzantine:worker-1=signflip:ten", "'ten' is not a number")]
    [InlineData("byzantine:worker-1=gaussian:0", "sigma must be above 0")]
    [InlineData("byzantine:worker-1=noise:NaN", "is not a number")]
    [InlineData("byzantine:worker-1=labelflip:3", "labelflip takes no parameter")]
    [InlineData("byzantine:worker-1=zero@round=0", "at least 1")]
    [InlineData("byzantine:worker-1=alie:-1", "z must be from 0 to 100")]
    [InlineData("byzantine:ps=signflip", "byzantine applies to workers")]
    [InlineData("byzantine:worker-0=signflip", "byzantine applies to workers")]
    [InlineData("byzantine:worker-1", "needs an attack")]
    [InlineData("byzantine:worker-1=", "is not one of signflip")]
    public void Bad_attacks_are_errors_that_name_the_problem_and_show_the_grammar(string item, string problem)
    {
        var act = () => FaultPlan.Parse([item]);
        act.Should().Throw<FaultSpecException>().Where(e => e.Message.Contains(item) && e.Message.Contains(problem) && e.Message.Contains("byzantine:worker-N=ATTACK"));
    }

    [Theory]
    [InlineData(new[] { "byzantine:worker-5=zero" }, "has 4 workers")]
    [InlineData(new[] { "byzantine:worker-1=zero", "byzantine:worker-1=signflip" }, "more than one attack")]
    [InlineData(new[] { "byzantine:worker-1=zero", "byzantine:worker-2=zero", "byzantine:worker-3=zero", "byzantine:worker-4=zero" }, "at least one worker must be honest")]
    [InlineData(new[] { "byzantine:worker-1=zero@round=101" }, "only 100 rounds")]
    public void Attacks_that_do_not_fit_the_job_are_rejected(string[] items, string problem)
    {
        var act = () => FaultPlan.Parse(items).Validate(4, false, 100);
        act.Should().Throw<FaultSpecException>().WithMessage($"*{problem}*");
    }

    [Fact]
    public void Each_attack_does_what_it_says()
    {
        var honest = new float[] { 1, -2, 0.5f, 4, 0, 3 };

        var flipped = honest.ToArray();
        GradientAttack.Parse("signflip").Apply(flipped, 1, "worker-1", 5);
        flipped.Should().Equal(honest.Select(v => v * -10f));

        var zero = honest.ToArray();
        GradientAttack.Parse("zero").Apply(zero, 1, "worker-1", 5);
        zero.Should().OnlyContain(v => v == 0);

        var first = new float[1000];
        var again = new float[1000];
        var otherRound = new float[1000];
        GradientAttack.Parse("gaussian").Apply(first, 1, "worker-1", 5);
        GradientAttack.Parse("gaussian").Apply(again, 1, "worker-1", 5);
        GradientAttack.Parse("gaussian").Apply(otherRound, 1, "worker-1", 6);
        again.Should().Equal(first, "attacks draw from the seed, the worker and the round");
        otherRound.Should().NotEqual(first);
        double std = Math.Sqrt(first.Average(v => (double)v * v));
        std.Should().BeInRange(90, 110);

        var noisy = Enumerable.Repeat(5f, 1000).ToArray();
        GradientAttack.Parse("noise:0.5").Apply(noisy, 1, "worker-1", 5);
        noisy.Average().Should().BeApproximately(5f, 0.1f);
        noisy.Should().Contain(v => v != 5f);
    }

    [Fact]
    public void Alie_sends_the_honest_mean_minus_z_standard_deviations()
    {
        ReadOnlyMemory<float>[] honest = [new float[] { 1, 10 }, new float[] { 3, 10 }, new float[] { 5, 10 }];
        var sent = new float[2];
        GradientAttack.Parse("alie:1").ApplyAlie(sent, honest, workers: 4, colluding: 1);
        sent[0].Should().BeApproximately(3f - 2f, 1e-6f); // mean 3, sample std 2
        sent[1].Should().Be(10f);

        // The paper's z_max: 0 for 1 of 4 (the attack then sends the honest mean); about 0.566 for 2 of 7.
        GradientAttack.AlieZ(4, 1).Should().Be(0);
        GradientAttack.AlieZ(7, 2).Should().BeApproximately(0.5659, 1e-3);
        GradientAttack.AlieZ(50, 24).Should().BeApproximately(1.7507, 1e-3); // Phi^-1(0.96)
        GradientAttack.InverseNormal(0.975).Should().BeApproximately(1.959964, 1e-6);
    }
}
