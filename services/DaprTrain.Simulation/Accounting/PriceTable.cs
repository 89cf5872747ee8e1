using System.Text.Json;
using DaprTrain.Simulation;

namespace DaprTrain.Simulation.Accounting;

/// <summary>
/// Prices for the cost estimate, read from a JSON file that names its source and date (see config/prices.json).
/// Serverless: per GB-second of memory while busy plus per request. VM: per instance-hour, busy or not.
/// </summary>
public sealed record PriceTable(
    string Source,
    string Date,
    string Region,
    double ServerlessPerGbSecond,
    double ServerlessPerMillionRequests,
    string VmInstanceType,
    double VmPerHour,
    double WorkerMemoryGb,
    double ServerMemoryGb,
    double VmMinimumBilledSeconds = 60,
    double ChannelPerHour = 0,
    string ChannelType = "")
{
    private static readonly JsonSerializerOptions Options = new() { PropertyNameCaseInsensitive = true, ReadCommentHandling = JsonCommentHandling.Skip };

    public static PriceTable Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"price table '{path}' does not exist", path);
        PriceTable? table;
        string text;
        try
        {
            text = BoundedFile.ReadAllText(path, "price table");
            table = JsonSerializer.Deserialize<PriceTable>(text, Options);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"price table '{path}' is not valid JSON: {ex.Message}", ex);
        }
        if (table is null) throw new InvalidDataException($"price table '{path}' is empty");
        table.Validate(path);
        RequireFields(text, path, "price table", Required);
        return table;
    }

    /// <summary>The fields a price table must name: a missing one would price its part at $0 without a word.</summary>
    private static readonly string[] Required = ["source", "date", "region", "serverlessPerGbSecond", "serverlessPerMillionRequests", "vmInstanceType", "vmPerHour", "workerMemoryGb", "serverMemoryGb"];

    /// <summary>Refuses a JSON object (the file's root, or <paramref name="element"/>) that lacks any of <paramref name="required"/>, naming the first.</summary>
    internal static void RequireFields(string json, string origin, string what, IEnumerable<string> required, JsonElement? element = null)
    {
        using var document = element is null ? JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }) : null;
        var root = element ?? document!.RootElement;
        var present = root.ValueKind == JsonValueKind.Object
            ? root.EnumerateObject().Where(p => p.Value.ValueKind != JsonValueKind.Null).Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase)
            : [];
        foreach (string name in required)
        {
            if (!present.Contains(name)) throw new InvalidDataException($"{what} '{origin}' has no '{name}' (required: {string.Join(", ", required)})");
        }
    }

    public void Validate(string origin)
    {
        if (string.IsNullOrWhiteSpace(Source) || string.IsNullOrWhiteSpace(Date)) throw new InvalidDataException($"price table '{origin}' must name its source and date");
        foreach (var (name, value) in new[] { ("serverlessPerGbSecond", ServerlessPerGbSecond), ("serverlessPerMillionRequests", ServerlessPerMillionRequests), ("vmPerHour", VmPerHour), ("workerMemoryGb", WorkerMemoryGb), ("serverMemoryGb", ServerMemoryGb), ("vmMinimumBilledSeconds", VmMinimumBilledSeconds), ("channelPerHour", ChannelPerHour) })
        {
            if (!(value >= 0) || double.IsInfinity(value)) throw new InvalidDataException($"price table '{origin}': {name} must be a non-negative number (got {value})");
        }
    }

    /// <summary>The table shipped in config/prices.json beside the program.</summary>
    public static PriceTable Default() => Load(Path.Combine(AppContext.BaseDirectory, "config", "prices.json"));
}

public sealed record CostEstimate(double ServerlessUsd, double VmUsd, double BusyGbSeconds, long Requests, int Instances, double WallHours);

public static class CostEstimator
{
    /// <summary>Serverless: busy GB-seconds and requests of every node; VM: every node's instance for the whole run.</summary>
    public static CostEstimate Estimate(PriceTable prices, IEnumerable<NodeMetrics> nodes, long requests, double runMs)
    {
        var list = nodes.ToList();
        double gbSeconds = list.Sum(n => n.BusyMs / 1000.0 * (n.Node.StartsWith("worker-", StringComparison.Ordinal) ? prices.WorkerMemoryGb : prices.ServerMemoryGb));
        double serverless = gbSeconds * prices.ServerlessPerGbSecond + requests / 1e6 * prices.ServerlessPerMillionRequests;
        double hours = runMs / 3_600_000.0;
        double vm = list.Count * hours * prices.VmPerHour;
        return new CostEstimate(serverless, vm, gbSeconds, requests, list.Count, hours);
    }
}
