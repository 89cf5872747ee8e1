using System.Text.Json;

namespace DaprTrain.Simulation.Compute;

/// <summary>
/// What a serverless platform charges and imposes, read from a JSON file whose every profile names its source and
/// date (config/platforms.json). All of it is modelled; only the compute inside a function is measured.
/// </summary>
public sealed record PlatformProfile(
    string Name,
    string Source,
    string Date,
    int MemoryMb,
    int MbPerVcpu,
    double MaxVcpus,
    double ColdStartMs,
    double InvokeOverheadMs,
    double BandwidthMbps,
    double IdleTimeoutMs,
    int ConcurrencyLimit,
    double TimeoutMs,
    double MaxTimeoutMs,
    double BillingGranularityMs,
    double MinimumBilledMs,
    bool BillsColdStart,
    double PricePerGbSecond,
    double PricePerVcpuSecond,
    double PricePerMillionRequests,
    double PricePerThousandTransitions,
    int TransitionsPerInvocation,
    int TransitionsPerFanOut,
    double PricePerMillionWorkflows = 0)
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    public const string DefaultName = "aws-lambda";

    /// <summary>The function's vCPUs at its memory size (CPU proportional to memory, up to the platform's maximum).</summary>
    public double Vcpus => Math.Min(MaxVcpus, (double)MemoryMb / MbPerVcpu);

    public double MemoryGb => MemoryMb / 1024.0;

    /// <summary>The duration an invocation of <paramref name="runMs"/> is billed for: rounded up to the granularity, at least the minimum.</summary>
    public double BilledMs(double runMs) => Math.Max(MinimumBilledMs, Math.Ceiling(Math.Round(runMs, 6) / BillingGranularityMs) * BillingGranularityMs);

    /// <summary>What an invocation billed for <paramref name="billedMs"/> costs, request included.</summary>
    public double InvocationUsd(double billedMs) =>
        billedMs / 1000.0 * (MemoryGb * PricePerGbSecond + Vcpus * PricePerVcpuSecond) + PricePerMillionRequests / 1e6;

    public PlatformProfile WithMemory(int memoryMb) => this with { MemoryMb = memoryMb };

    /// <summary>The fields every profile must name (the transition and workflow prices may be left out: they are 0 where no orchestrator bills).</summary>
    private static readonly string[] Required = ["name", "source", "date", "memoryMb", "mbPerVcpu", "maxVcpus", "coldStartMs", "invokeOverheadMs", "bandwidthMbps", "idleTimeoutMs",
        "concurrencyLimit", "timeoutMs", "maxTimeoutMs", "billingGranularityMs", "minimumBilledMs", "billsColdStart", "pricePerGbSecond", "pricePerVcpuSecond", "pricePerMillionRequests"];

    private void ValidateIdentity(string origin)
    {
        if (string.IsNullOrWhiteSpace(Name)) throw new InvalidDataException($"a platform profile in {origin} has no name");
        if (string.IsNullOrWhiteSpace(Source) || string.IsNullOrWhiteSpace(Date)) throw new InvalidDataException($"platform profile '{Name}' in {origin} must name its source and date");
    }

    public void Validate(string origin)
    {
        string where = $"platform profile '{Name}' in {origin}";
        ValidateIdentity(origin);
        if (MemoryMb is < 128 or > 65536) throw new InvalidDataException($"{where}: memoryMb must be 128 to 65536 (got {MemoryMb})");
        if (MbPerVcpu < 1) throw new InvalidDataException($"{where}: mbPerVcpu must be positive (got {MbPerVcpu})");
        if (ConcurrencyLimit < 1) throw new InvalidDataException($"{where}: concurrencyLimit must be at least 1 (got {ConcurrencyLimit})");
        if (!(BillingGranularityMs > 0)) throw new InvalidDataException($"{where}: billingGranularityMs must be positive (got {BillingGranularityMs})");
        if (!(TimeoutMs > 0) || TimeoutMs > MaxTimeoutMs) throw new InvalidDataException($"{where}: timeoutMs must be positive and at most maxTimeoutMs ({TimeoutMs} > {MaxTimeoutMs})");
        if (TransitionsPerInvocation < 0 || TransitionsPerFanOut < 0) throw new InvalidDataException($"{where}: transitions must be zero or more");
        foreach (var (name, value) in new[] { ("maxVcpus", MaxVcpus), ("coldStartMs", ColdStartMs), ("invokeOverheadMs", InvokeOverheadMs), ("bandwidthMbps", BandwidthMbps),
                     ("idleTimeoutMs", IdleTimeoutMs), ("minimumBilledMs", MinimumBilledMs), ("pricePerGbSecond", PricePerGbSecond), ("pricePerVcpuSecond", PricePerVcpuSecond),
                     ("pricePerMillionRequests", PricePerMillionRequests), ("pricePerThousandTransitions", PricePerThousandTransitions), ("pricePerMillionWorkflows", PricePerMillionWorkflows) })
        {
            if (!(value >= 0) || double.IsInfinity(value)) throw new InvalidDataException($"{where}: {name} must be a non-negative number (got {value})");
        }
        if (!(BandwidthMbps > 0) || !(MaxVcpus > 0)) throw new InvalidDataException($"{where}: bandwidthMbps and maxVcpus must be positive");
    }

    /// <summary>Every profile of a platforms file, validated.</summary>
    public static IReadOnlyList<PlatformProfile> LoadAll(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"platform profiles '{path}' do not exist", path);
        PlatformFile? file;
        string text;
        try
        {
            text = BoundedFile.ReadAllText(path, "platform profiles");
            file = JsonSerializer.Deserialize<PlatformFile>(text, Json);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"platform profiles '{path}' are not valid JSON: {ex.Message}", ex);
        }
        if (file?.Platforms is not { Count: > 0 } platforms) throw new InvalidDataException($"platform profiles '{path}' list no platform");
        int empty = platforms.FindIndex(p => p is null);
        if (empty >= 0) throw new InvalidDataException($"platform profiles '{path}': entry {empty + 1} of \"platforms\" is null, not a profile");
        using var document = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var elements = document.RootElement.EnumerateObject().First(p => p.Name.Equals("platforms", StringComparison.OrdinalIgnoreCase)).Value.EnumerateArray().ToList();
        for (int i = 0; i < platforms.Count; i++)
        {
            var profile = platforms[i];
            profile.ValidateIdentity(path);
            Accounting.PriceTable.RequireFields(text, path, $"platform profile '{profile.Name}' in", Required, elements[i]);
            profile.Validate(path);
        }
        return platforms;
    }

    public static PlatformProfile Load(string? path, string name)
    {
        string file = path ?? Path.Combine(AppContext.BaseDirectory, "config", "platforms.json");
        var all = LoadAll(file);
        return all.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"no platform '{name}' in {file} (known: {string.Join(", ", all.Select(p => p.Name))})");
    }

    private sealed record PlatformFile(List<PlatformProfile>? Platforms);
}
