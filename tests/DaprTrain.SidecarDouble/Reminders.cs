using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace DaprTrain.SidecarDouble;

/// <summary>
/// Actor reminders: kept by the shared components, not by the host, so they survive the actor host's restart;
/// each fires on schedule by calling PUT {host}/actors/{type}/{id}/method/remind/{name}, as daprd does. A host
/// that is down misses the firing and gets the next one.
/// </summary>
public sealed partial class Reminders : IDisposable
{
    private readonly ConcurrentDictionary<(string Type, string Id, string Name), Timer> _timers = new();

    public int Fired;

    public int Count => _timers.Count;

    public void Register(SharedComponents components, string type, string id, string name, string body)
    {
        using var json = JsonDocument.Parse(string.IsNullOrWhiteSpace(body) ? "{}" : body);
        var root = json.RootElement;
        var due = root.TryGetProperty("dueTime", out var d) ? Duration(d.GetString()) : TimeSpan.Zero;
        var period = root.TryGetProperty("period", out var p) ? Duration(p.GetString()) : Timeout.InfiniteTimeSpan;
        if (period <= TimeSpan.Zero) period = Timeout.InfiniteTimeSpan;
        string? data = root.TryGetProperty("data", out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
        string payload = JsonSerializer.Serialize(new { data, dueTime = d.ValueKind == JsonValueKind.String ? d.GetString() : "0h0m0s0ms", period = p.ValueKind == JsonValueKind.String ? p.GetString() : "" });

        var timer = new Timer(_ => _ = FireAsync(components, type, id, name, payload), null, due, period);
        if (_timers.TryRemove((type, id, name), out var old)) old.Dispose();
        _timers[(type, id, name)] = timer;
    }

    public void Unregister(string type, string id, string name)
    {
        if (_timers.TryRemove((type, id, name), out var timer)) timer.Dispose();
    }

    private async Task FireAsync(SharedComponents components, string type, string id, string name, string payload)
    {
        if (!components.Placement.TryGetValue(type, out var host)) return;
        try
        {
            using var content = new StringContent(payload, Encoding.UTF8, "application/json");
            using var response = await components.Http.PutAsync(new Uri(host, $"actors/{type}/{id}/method/remind/{name}"), content);
            if (response.IsSuccessStatusCode) Interlocked.Increment(ref Fired);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
        }
    }

    /// <summary>Dapr's "1h2m3s4ms" and the ISO 8601 forms ("PT1S", "R5/PT1S") the SDK writes.</summary>
    internal static TimeSpan Duration(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return TimeSpan.Zero;
        var total = TimeSpan.Zero;
        foreach (Match match in DurationPart().Matches(text.Contains('/') ? text[(text.IndexOf('/') + 1)..] : text))
        {
            double value = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            total += match.Groups[2].Value.ToLowerInvariant() switch
            {
                "h" => TimeSpan.FromHours(value),
                "m" => TimeSpan.FromMinutes(value),
                "s" => TimeSpan.FromSeconds(value),
                _ => TimeSpan.FromMilliseconds(value),
            };
        }
        return total;
    }

    [GeneratedRegex("([0-9]+(?:\\.[0-9]+)?)(ms|h|m|s)", RegexOptions.IgnoreCase)]
    private static partial Regex DurationPart();

    public void Dispose()
    {
        foreach (var timer in _timers.Values) timer.Dispose();
        _timers.Clear();
    }
}
