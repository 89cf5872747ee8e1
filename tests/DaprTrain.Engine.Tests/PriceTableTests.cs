using DaprTrain.Simulation.Accounting;

namespace DaprTrain.Engine.Tests;

public sealed class PriceTableTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-prices-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string json)
    {
        string path = Path.Combine(_dir, Guid.NewGuid() + ".json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void The_shipped_table_loads_and_names_its_source_and_date()
    {
        var table = PriceTable.Default();
        table.Source.Should().NotBeNullOrWhiteSpace();
        table.Date.Should().MatchRegex(@"^\d{4}-\d{2}-\d{2}$");
    }

    [Theory]
    [InlineData("{ not json", "not valid JSON")]
    [InlineData("{\"source\":\"\",\"date\":\"2026-01-01\"}", "must name its source and date")]
    [InlineData("{\"source\":\"s\",\"date\":\"d\",\"vmPerHour\":-1}", "vmPerHour must be a non-negative number")]
    public void A_bad_table_is_refused_naming_the_file_and_the_problem(string json, string problem)
    {
        string path = Write(json);
        var act = () => PriceTable.Load(path);
        act.Should().Throw<InvalidDataException>().Where(e => e.Message.Contains(path) && e.Message.Contains(problem));
    }
}
