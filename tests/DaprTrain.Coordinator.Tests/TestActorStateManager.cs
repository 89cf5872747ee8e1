using System.Text.Json;
using Dapr.Actors.Runtime;

namespace DaprTrain.Coordinator.Tests;

/// <summary>
/// An actor state manager over a dictionary of JSON strings (the "state store"): values are serialised when
/// saved and deserialised when an actor instance first reads them, as with a real store, so a new actor
/// instance over the same dictionary sees exactly what was saved, and nothing that was not.
/// </summary>
internal sealed class TestActorStateManager(Dictionary<string, string> store) : IActorStateManager
{
    private readonly Dictionary<string, object?> _pending = [];

    public int Saves { get; private set; }

    public Task<ConditionalValue<T>> TryGetStateAsync<T>(string stateName, CancellationToken cancellationToken = default)
    {
        if (_pending.TryGetValue(stateName, out var pending)) return Task.FromResult(new ConditionalValue<T>(true, (T)pending!));
        return Task.FromResult(store.TryGetValue(stateName, out var json)
            ? new ConditionalValue<T>(true, JsonSerializer.Deserialize<T>(json)!)
            : new ConditionalValue<T>(false, default!));
    }

    public Task SetStateAsync<T>(string stateName, T value, CancellationToken cancellationToken = default)
    {
        _pending[stateName] = value;
        return Task.CompletedTask;
    }

    public Task SetStateAsync<T>(string stateName, T value, TimeSpan ttl, CancellationToken cancellationToken = default) => SetStateAsync(stateName, value, cancellationToken);

    public Task SaveStateAsync(CancellationToken cancellationToken = default)
    {
        foreach (var (key, value) in _pending) store[key] = JsonSerializer.Serialize(value, value?.GetType() ?? typeof(object));
        _pending.Clear();
        Saves++;
        return Task.CompletedTask;
    }

    public async Task<T> GetStateAsync<T>(string stateName, CancellationToken cancellationToken = default)
    {
        var value = await TryGetStateAsync<T>(stateName, cancellationToken);
        return value.HasValue ? value.Value : throw new KeyNotFoundException(stateName);
    }

    public Task AddStateAsync<T>(string stateName, T value, CancellationToken cancellationToken = default) => SetStateAsync(stateName, value, cancellationToken);

    public Task AddStateAsync<T>(string stateName, T value, TimeSpan ttl, CancellationToken cancellationToken = default) => SetStateAsync(stateName, value, cancellationToken);

    public async Task<bool> TryAddStateAsync<T>(string stateName, T value, CancellationToken cancellationToken = default)
    {
        if (await ContainsStateAsync(stateName, cancellationToken)) return false;
        await SetStateAsync(stateName, value, cancellationToken);
        return true;
    }

    public Task<bool> TryAddStateAsync<T>(string stateName, T value, TimeSpan ttl, CancellationToken cancellationToken = default) => TryAddStateAsync(stateName, value, cancellationToken);

    public Task RemoveStateAsync(string stateName, CancellationToken cancellationToken = default)
    {
        _pending.Remove(stateName);
        store.Remove(stateName);
        return Task.CompletedTask;
    }

    public async Task<bool> TryRemoveStateAsync(string stateName, CancellationToken cancellationToken = default)
    {
        bool had = await ContainsStateAsync(stateName, cancellationToken);
        await RemoveStateAsync(stateName, cancellationToken);
        return had;
    }

    public Task<bool> ContainsStateAsync(string stateName, CancellationToken cancellationToken = default) =>
        Task.FromResult(_pending.ContainsKey(stateName) || store.ContainsKey(stateName));

    public async Task<T> GetOrAddStateAsync<T>(string stateName, T value, CancellationToken cancellationToken = default)
    {
        var current = await TryGetStateAsync<T>(stateName, cancellationToken);
        if (current.HasValue) return current.Value;
        await SetStateAsync(stateName, value, cancellationToken);
        return value;
    }

    public Task<T> GetOrAddStateAsync<T>(string stateName, T value, TimeSpan ttl, CancellationToken cancellationToken = default) => GetOrAddStateAsync(stateName, value, cancellationToken);

    public async Task<T> AddOrUpdateStateAsync<T>(string stateName, T addValue, Func<string, T, T> updateValueFactory, CancellationToken cancellationToken = default)
    {
        var current = await TryGetStateAsync<T>(stateName, cancellationToken);
        var next = current.HasValue ? updateValueFactory(stateName, current.Value) : addValue;
        await SetStateAsync(stateName, next, cancellationToken);
        return next;
    }

    public Task<T> AddOrUpdateStateAsync<T>(string stateName, T addValue, Func<string, T, T> updateValueFactory, TimeSpan ttl, CancellationToken cancellationToken = default) =>
        AddOrUpdateStateAsync(stateName, addValue, updateValueFactory, cancellationToken);

    public Task ClearCacheAsync(CancellationToken cancellationToken = default)
    {
        _pending.Clear();
        return Task.CompletedTask;
    }

    public Task UnloadStateAsync(string stateName, UnloadStateOptions? options = null, CancellationToken cancellationToken = default) => Task.CompletedTask;
}

/// <summary>Keeps the reminders an actor registers, so a test can fire them.</summary>
internal sealed class CapturingTimerManager : ActorTimerManager
{
    public List<ActorReminder> Reminders { get; } = [];

    public override Task RegisterReminderAsync(ActorReminder reminder)
    {
        Reminders.RemoveAll(r => r.Name == reminder.Name);
        Reminders.Add(reminder);
        return Task.CompletedTask;
    }

    public override Task<IActorReminder> GetReminderAsync(ActorReminderToken reminder) =>
        Task.FromResult<IActorReminder>(Reminders.Single(r => r.Name == reminder.Name));

    public override Task UnregisterReminderAsync(ActorReminderToken reminder)
    {
        Reminders.RemoveAll(r => r.Name == reminder.Name);
        return Task.CompletedTask;
    }

    public override Task RegisterTimerAsync(ActorTimer timer) => Task.CompletedTask;

    public override Task UnregisterTimerAsync(ActorTimerToken timer) => Task.CompletedTask;
}
