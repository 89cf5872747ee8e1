using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace DaprTrain.SidecarDouble;

public enum ScheduleKind
{
    Reminder,
    Timer,
}

/// <summary>
/// Actor reminders and timers. Reminders are kept by the shared components, not by the host, so they survive the
/// actor host's restart; timers die with the host (<see cref="DropTimers"/> when its app attaches again). Each fires
/// on schedule by calling PUT {host}/actors/{type}/{id}/method/remind/{name} (or .../timer/{name}), as daprd does.
/// A host that is down misses the firing and gets the next one. A firing takes the actor's turn
/// (<see cref="SharedComponents.ActorTurns"/>), as daprd's does.
/// </summary>
public sealed partial class Reminders : IDisposable
{
    private readonly ConcurrentDictionary<(ScheduleKind Kind, string Type, string Id, string Name), Timer> _timers = new();

    public int Fired;

    public int TimersFired;

    public int Count => _timers.Keys.Count(k => k.Kind == ScheduleKind.Reminder);

    public int TimerCount => _timers.Keys.Count(k => k.Kind == ScheduleKind.Timer);

    public void Register(SharedComponents components, string type, string id, string name, string body, ScheduleKind kind = ScheduleKind.Reminder)
    {
        using var json = JsonDocument.Parse(string.IsNullOrWhiteSpace(body) ? "{}" : body);
        var root = json.RootElement;
        var due = root.TryGetProperty("dueTime", out var d) ? Duration(d.GetString()) : TimeSpan.Zero;
        var period = root.TryGetProperty("period", out var p) ? Duration(p.GetString()) : Timeout.InfiniteTimeSpan;
        if (period <= TimeSpan.Zero) period = Timeout.InfiniteTimeSpan;
        string? data = root.TryGetProperty("data", out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
        string dueText = d.ValueKind == JsonValueKind.String ? d.GetString()! : "0h0m0s0ms";
        string periodText = p.ValueKind == JsonValueKind.String ? p.GetString()! : "";
        // A timer's body carries the callback the actor runtime invokes; a reminder's does not.
        string payload = kind == ScheduleKind.Timer
            ? JsonSerializer.Serialize(new { callback = root.TryGetProperty("callback", out var c) ? c.GetString() : null, data, dueTime = dueText, period = periodText })
            : JsonSerializer.Serialize(new { data, dueTime = dueText, period = periodText });

        var key = (kind, type, id, name);
        Timer? timer = null;
        // The firing knows its own timer: one that waited for the actor's turn while it was deleted or replaced does not fire.
        timer = new Timer(_ => _ = FireAsync(components, key, payload, timer!), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        if (_timers.TryRemove(key, out var old)) old.Dispose();
        _timers[key] = timer;
        timer.Change(due, period);
    }

    public void Unregister(string type, string id, string name, ScheduleKind kind = ScheduleKind.Reminder)
    {
        if (_timers.TryRemove((kind, type, id, name), out var timer)) timer.Dispose();
    }

    /// <summary>The host of these actor types went away: its actors' timers go with it (reminders stay).</summary>
    public void DropTimers(IEnumerable<string> actorTypes)
    {
        var types = actorTypes.ToHashSet(StringComparer.Ordinal);
        foreach (var key in _timers.Keys.Where(k => k.Kind == ScheduleKind.Timer && types.Contains(k.Type)).ToList())
        {
            if (_timers.TryRemove(key, out var timer)) timer.Dispose();
        }
    }

    private async Task FireAsync(SharedComponents components, (ScheduleKind Kind, string Type, string Id, string Name) key, string payload, Timer timer)
    {
        if (!components.Placement.TryGetValue(key.Type, out var host)) return;
        string path = key.Kind == ScheduleKind.Timer ? "timer" : "remind";
        // A reminder or timer is a turn of the actor like any call: it waits for a running call and holds off the next.
        using var turn = await components.ActorTurns.TakeAsync(key.Type, key.Id, CancellationToken.None);
        // Deleted (or its host gone) while it waited: daprd cancels what waits on a deactivated actor's lock.
        if (!_timers.TryGetValue(key, out var current) || !ReferenceEquals(current, timer)) return;
        try
        {
            using var content = new StringContent(payload, Encoding.UTF8, "application/json");
            using var response = await components.Http.PutAsync(new Uri(host, $"actors/{key.Type}/{key.Id}/method/{path}/{key.Name}"), content);
            if (!response.IsSuccessStatusCode) return;
            if (key.Kind == ScheduleKind.Timer) Interlocked.Increment(ref TimersFired);
            else Interlocked.Increment(ref Fired);
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
