using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DaprTrain.Engine.Messaging;

/// <summary>
/// Float arrays for the values of received compressed messages. A float32 message is read in place, but a compressed one
/// is decoded into an array of its value count, which its receiver holds until it forgets the round: allocated fresh, that
/// is a 0.4 MB (MLP) to 6.9 MB (residual CNN) array per message on the large-object heap, and the collections those bring
/// cost the receive path 3 to 8 times its work (BENCHMARKS.md, compression throughput). A node rents through
/// <see cref="WireCodec.Decode(byte[], int, int, DecodedValuesPool?)"/> and gives an array back when it forgets the
/// message's round or drops the message (<see cref="Return"/>); as <see cref="MessageBufferPool"/> does for message bytes.
/// <para>
/// Bounded: at most <c>maxPerLength</c> free arrays of one length, and free arrays of at most <c>maxLengths</c> lengths (the
/// length used least recently is forgotten first). Lengths come from the model (the parameter count, a p2p-scatter slice),
/// but a sender chooses the count it declares (at most the receiver's parameter count, checked before anything is rented):
/// messages of ever new lengths must not make the pool keep an array of each.
/// </para>
/// <para>
/// The pool takes back only what it lent and has not had back: values read in place from a float32 message, or a node's own
/// gradient, are not its to take and are left alone, so a node can hand it any values it stops holding. It knows what it
/// lent without keeping it alive: an array never given back is collected as before.
/// </para>
/// </summary>
public sealed class DecodedValuesPool(int maxPerLength = 64, int maxLengths = 4)
{
    private static readonly object LentMark = new();

    private readonly int _maxPerLength = maxPerLength >= 0 ? maxPerLength : throw new ArgumentOutOfRangeException(nameof(maxPerLength), "at least 0");
    private readonly int _maxLengths = maxLengths >= 1 ? maxLengths : throw new ArgumentOutOfRangeException(nameof(maxLengths), "at least 1");

    // Most recently used length first; a handful of entries, so a list beats a dictionary plus an age per length.
    private readonly List<(int Length, Stack<float[]> Free)> _byRecentUse = [];
    private readonly HashSet<float[]> _isFree = new(ReferenceEqualityComparer.Instance);
    private readonly ConditionalWeakTable<float[], object> _lent = [];
    private readonly Lock _lock = new();

    /// <summary>Arrays handed out that were new allocations.</summary>
    public long Allocated { get; private set; }

    /// <summary>Arrays handed out that had been returned before.</summary>
    public long Reused { get; private set; }

    /// <summary>Arrays lent and not returned yet (not counting those never returned and since collected).</summary>
    public long Outstanding { get; private set; }

    /// <summary>Free arrays the pool keeps, of every length.</summary>
    public int Free
    {
        get
        {
            lock (_lock) return _isFree.Count;
        }
    }

    /// <summary>
    /// An array of exactly <paramref name="length"/> floats. Its contents are whatever an earlier message left there: the
    /// decoder must write every value (top-k clears the values it does not send).
    /// </summary>
    public float[] Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        // An empty array is shared by the runtime, so lending it would make every empty message the same array.
        if (length == 0) return [];
        float[]? array = null;
        lock (_lock)
        {
            int at = IndexOf(length);
            if (at >= 0 && _byRecentUse[at].Free.TryPop(out array))
            {
                _isFree.Remove(array);
                MoveToFront(at);
                Reused++;
            }
            else
            {
                Allocated++;
            }
            Outstanding++;
        }
        array ??= GC.AllocateUninitializedArray<float>(length);
        _lent.Add(array, LentMark);
        return array;
    }

    /// <summary>
    /// Takes back the array behind <paramref name="values"/> if this pool lent it; true if it did. The caller guarantees that
    /// nothing reads it any more. Values of any other origin are left alone (false).
    /// </summary>
    /// <exception cref="InvalidOperationException">The array is already back in the pool, or only part of a lent array was given.</exception>
    public bool Return(ReadOnlyMemory<float> values)
    {
        if (!MemoryMarshal.TryGetArray(values, out var segment) || segment.Array is not { Length: > 0 } array) return false;
        lock (_lock)
        {
            // Two holders of one array would overwrite each other's values: a double return is a bug, said loudly.
            if (_isFree.Contains(array)) throw new InvalidOperationException("a decoded-values array was returned twice");
            if (!_lent.TryGetValue(array, out _)) return false;
            if (segment.Offset != 0 || segment.Count != array.Length)
            {
                throw new InvalidOperationException($"part of a lent array ({segment.Count} of {array.Length} values at {segment.Offset}) was returned; only whole arrays come back");
            }
            _lent.Remove(array);
            Outstanding--;
            int at = IndexOf(array.Length);
            if (at < 0)
            {
                if (_byRecentUse.Count >= _maxLengths)
                {
                    // The length used least recently goes, and its free arrays to the collector.
                    foreach (var dropped in _byRecentUse[^1].Free) _isFree.Remove(dropped);
                    _byRecentUse.RemoveAt(_byRecentUse.Count - 1);
                }
                _byRecentUse.Add((array.Length, new Stack<float[]>()));
                at = _byRecentUse.Count - 1;
            }
            MoveToFront(at);
            var free = _byRecentUse[0].Free;
            if (free.Count < _maxPerLength)
            {
                free.Push(array);
                _isFree.Add(array);
            }
            return true;
        }
    }

    private int IndexOf(int length)
    {
        for (int i = 0; i < _byRecentUse.Count; i++)
        {
            if (_byRecentUse[i].Length == length) return i;
        }
        return -1;
    }

    private void MoveToFront(int at)
    {
        if (at == 0) return;
        var entry = _byRecentUse[at];
        _byRecentUse.RemoveAt(at);
        _byRecentUse.Insert(0, entry);
    }
}
