namespace DaprTrain.Engine.Messaging;

/// <summary>
/// Byte arrays of exact lengths for messages whose end of life someone knows (the embedded job knows when a
/// round's messages can no longer be read). A gradient message lives for one round: allocated fresh every round,
/// 0.1 to 1 MB each, they cost page faults on first touch and collections that copy the survivors; reused, neither.
/// A buffer that is never returned is simply collected.
/// </summary>
public sealed class MessageBufferPool(int maxPerLength = 64)
{
    private readonly Dictionary<int, Stack<byte[]>> _free = [];
    private readonly HashSet<byte[]> _isFree = new(ReferenceEqualityComparer.Instance);
    private readonly Lock _lock = new();

    /// <summary>Buffers handed out that were new allocations.</summary>
    public long Allocated { get; private set; }

    /// <summary>Buffers handed out that had been returned before.</summary>
    public long Reused { get; private set; }

    public byte[] Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        lock (_lock)
        {
            if (_free.TryGetValue(length, out var stack) && stack.TryPop(out var buffer))
            {
                _isFree.Remove(buffer);
                Reused++;
                return buffer;
            }
            Allocated++;
        }
        return GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>Takes a buffer back. The caller guarantees that nothing reads or writes it any more.</summary>
    public void Return(byte[] buffer)
    {
        lock (_lock)
        {
            // Two renters of one buffer would overwrite each other's messages: a double return is a bug, said loudly.
            if (_isFree.Contains(buffer)) throw new InvalidOperationException("a message buffer was returned twice");
            if (!_free.TryGetValue(buffer.Length, out var stack)) _free[buffer.Length] = stack = new Stack<byte[]>();
            if (stack.Count >= maxPerLength) return;
            stack.Push(buffer);
            _isFree.Add(buffer);
        }
    }
}
