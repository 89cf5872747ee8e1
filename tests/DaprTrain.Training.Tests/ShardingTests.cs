using DaprTrain.Training.Data;

namespace DaprTrain.Training.Tests;

public class ShardingTests
{
    private static readonly long[] Indices = Enumerable.Range(0, 1003).Select(i => (long)i * 3).ToArray();
    private static readonly long[] Labels = Enumerable.Range(0, 3100).Select(i => (long)(i * 7 % 10)).ToArray();

    [Theory]
    [InlineData(ShardingMode.Iid, 4, 1)]
    [InlineData(ShardingMode.Iid, 7, 1)]
    [InlineData(ShardingMode.LabelSkew, 4, 2)]
    [InlineData(ShardingMode.LabelSkew, 5, 2)]
    public void Shards_are_disjoint_cover_everything_and_are_balanced(ShardingMode mode, int shards, int maxImbalance)
    {
        var result = Sharding.Split(Indices, Labels, shards, seed: 3, mode);
        result.Should().HaveCount(shards);
        var all = result.SelectMany(s => s).ToList();
        all.Should().OnlyHaveUniqueItems();
        all.Should().BeEquivalentTo(Indices);
        (result.Max(s => s.Length) - result.Min(s => s.Length)).Should().BeLessThanOrEqualTo(maxImbalance);
    }

    [Theory]
    [InlineData(ShardingMode.Iid)]
    [InlineData(ShardingMode.LabelSkew)]
    public void Same_seed_same_shards_other_seed_other_shards(ShardingMode mode)
    {
        var a = Sharding.Split(Indices, Labels, 4, seed: 11, mode);
        var b = Sharding.Split(Indices, Labels, 4, seed: 11, mode);
        var c = Sharding.Split(Indices, Labels, 4, seed: 12, mode);
        a.Should().BeEquivalentTo(b, o => o.WithStrictOrdering());
        a.SelectMany(s => s).Should().NotEqual(c.SelectMany(s => s));
    }

    [Fact]
    public void Label_skew_gives_each_shard_few_labels_and_iid_gives_all()
    {
        var skew = Sharding.Split(Indices, Labels, 5, seed: 1, ShardingMode.LabelSkew);
        skew.Should().OnlyContain(s => s.Select(i => Labels[i]).Distinct().Count() <= 4);
        var iid = Sharding.Split(Indices, Labels, 5, seed: 1, ShardingMode.Iid);
        iid.Should().OnlyContain(s => s.Select(i => Labels[i]).Distinct().Count() == 10);
    }

    [Fact]
    public void Too_few_samples_for_the_shards_is_an_error()
    {
        var act = () => Sharding.Split([1, 2], Labels, 3, 1, ShardingMode.Iid);
        act.Should().Throw<ArgumentException>().WithMessage("*2 samples*3 shards*");
    }
}
