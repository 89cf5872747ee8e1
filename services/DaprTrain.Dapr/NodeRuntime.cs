using DaprTrain.Engine.Messaging;

namespace DaprTrain.Dapr;

/// <summary>
/// An engine node shared by a service's subscription handlers and its round loop. Nodes are not thread-safe:
/// every use goes through <see cref="Use{T}"/>, one at a time. Until the loop has created the node, handlers
/// are told it is not ready (their deliveries are retried).
/// </summary>
/// <param name="wakeOnDelivery">Whether <see cref="UntilAsync"/> looks again as soon as a delivery was handled (else only every poll).</param>
/// <param name="noticed">Told, when a wait that had to sleep ends, how many milliseconds after the latest delivery it saw
/// the condition hold: about what the poll added to the round (issue 16).</param>
public abstract class NodeRuntime<TNode>(bool wakeOnDelivery = true, Action<double>? noticed = null) : IDisposable where TNode : class, IDisposable
{
    private long _lastDelivered;
    private readonly Lock _gate = new();
    private TNode? _node;
    private TaskCompletionSource _delivered = NewSignal();

    public bool Ready => _node is not null;

    public void Start(TNode node)
    {
        lock (_gate) _node = node;
    }

    public T Use<T>(Func<TNode, T> action)
    {
        lock (_gate) return action(_node ?? throw new InvalidOperationException($"the {typeof(TNode).Name} is not started yet"));
    }

    /// <summary>A delivery handler for an inbox: null (retry later) until the node exists. Each delivery handled wakes the round's waits.</summary>
    public Func<byte[], DeliveryResult>? Deliver(Func<TNode, byte[], DeliveryResult> handler) =>
        _node is null ? null : payload =>
        {
            try
            {
                return Use(node => handler(node, payload));
            }
            finally
            {
                Interlocked.Exchange(ref _lastDelivered, System.Diagnostics.Stopwatch.GetTimestamp());
                Interlocked.Exchange(ref _delivered, NewSignal()).TrySetResult();
            }
        };

    /// <summary>
    /// Waits until <paramref name="done"/> holds for the node, or <paramref name="timeout"/> has passed; true when it held.
    /// It looks again after every delivery the node handles and at least every <paramref name="poll"/> (a deadline, a
    /// change no delivery makes): a contribution that completes the wait ends it at once instead of at the next poll,
    /// which cost half a poll on average on the round's path (issue 16).
    /// </summary>
    public async Task<bool> UntilAsync(TimeProvider time, Func<TNode, bool> done, TimeSpan timeout, TimeSpan poll, CancellationToken cancellationToken)
    {
        var until = time.GetUtcNow() + timeout;
        for (bool slept = false; ; slept = true)
        {
            // Taken before the check: a delivery handled after it completes this task, so no wake-up is lost.
            var delivered = Volatile.Read(ref _delivered).Task;
            if (Use(done))
            {
                long last = Interlocked.Read(ref _lastDelivered);
                if (slept && last != 0) noticed?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(last).TotalMilliseconds);
                return true;
            }
            if (time.GetUtcNow() >= until) return false;
            if (!wakeOnDelivery)
            {
                await Task.Delay(poll, time, cancellationToken);
                continue;
            }
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var polled = Task.Delay(poll, time, stop.Token);
            await Task.WhenAny(delivered, polled);
            cancellationToken.ThrowIfCancellationRequested();
            await stop.CancelAsync();
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Dispose()
    {
        lock (_gate) _node?.Dispose();
        GC.SuppressFinalize(this);
    }
}
