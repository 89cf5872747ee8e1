using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace DaprTrain.Dapr.Hosting;

/// <summary>
/// Kestrel's sockets read into blocks of its memory pool, 4 KB each by default, and each read is preceded by a one-byte
/// peek: a 540 kB CloudEvent delivering a gradient took 132 reads and 132 peeks, each a system call, a pipe flush and a
/// wake-up of the request's reader (issue 16: counted with strace on a worker, p2p over the sidecar double). With blocks
/// of <see cref="LargeBlockMemoryPool.DefaultBlockSize"/> a socket read takes what the kernel holds, up to a block.
/// Kestrel resolves this factory from the services (.NET 10: <c>SocketTransportOptions.MemoryPoolFactory</c> is set from
/// <see cref="IMemoryPoolFactory{T}"/>); what a connection holds stays bounded by Kestrel's
/// <c>Limits.MaxRequestBufferSize</c> (1 MB), as before, only in fewer, larger blocks.
/// </summary>
public sealed class LargeBlockMemoryPoolFactory(int blockSize = LargeBlockMemoryPool.DefaultBlockSize, int retainedBlocks = LargeBlockMemoryPool.DefaultRetainedBlocks)
    : IMemoryPoolFactory<byte>
{
    private long _rented;

    /// <summary>The size of every block of the pools this factory makes.</summary>
    public int BlockSize => blockSize;

    /// <summary>Blocks rented from this factory's pools so far (what Kestrel read into), for tests and diagnostics.</summary>
    public long Rented => Interlocked.Read(ref _rented);

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool(blockSize, retainedBlocks, () => Interlocked.Increment(ref _rented));
}

/// <summary>
/// Pinned blocks of one size, reused: at most <c>retainedBlocks</c> are kept between rentals (the rest go to the GC), so an
/// idle service holds at most that many blocks whatever a burst of connections once made it rent.
/// </summary>
public sealed class LargeBlockMemoryPool : MemoryPool<byte>
{
    /// <summary>64 KB: a loopback or pod-network socket usually holds more than that while a large body arrives.</summary>
    public const int DefaultBlockSize = 64 * 1024;

    /// <summary>64 blocks of 64 KB: 4 MB kept at most.</summary>
    public const int DefaultRetainedBlocks = 64;

    private readonly int _blockSize;
    private readonly int _retainedBlocks;
    private readonly ConcurrentQueue<Block> _free = new();
    private int _freeCount;
    private readonly Action? _onRent;
    private volatile bool _disposed;

    public LargeBlockMemoryPool(int blockSize = DefaultBlockSize, int retainedBlocks = DefaultRetainedBlocks, Action? onRent = null)
    {
        // Kestrel asks for at least 4 KB (its own block size) and writes HTTP/2 frame headers and response headers into one block.
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 4096);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(blockSize, 1024 * 1024);
        ArgumentOutOfRangeException.ThrowIfNegative(retainedBlocks);
        _blockSize = blockSize;
        _retainedBlocks = retainedBlocks;
        _onRent = onRent;
    }

    public override int MaxBufferSize => _blockSize;

    /// <summary>Blocks kept for reuse now.</summary>
    public int Retained => Volatile.Read(ref _freeCount);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (minBufferSize > _blockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize, $"a block of this pool holds {_blockSize} bytes");
        }
        _onRent?.Invoke();
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _freeCount);
            block.Lease();
            return block;
        }
        // Uninitialised: every reader of a block reads only what was written into it. Pinned: sockets pin what they read into.
        return new Block(this, GC.AllocateUninitializedArray<byte>(_blockSize, pinned: true));
    }

    private void Return(Block block)
    {
        if (_disposed) return;
        if (Interlocked.Increment(ref _freeCount) > _retainedBlocks)
        {
            Interlocked.Decrement(ref _freeCount);
            return;
        }
        _free.Enqueue(block);
    }

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        _free.Clear();
    }

    private sealed class Block(LargeBlockMemoryPool pool, byte[] array) : IMemoryOwner<byte>
    {
        // 1 while rented. A second Dispose of the same rental must not put the block in the pool twice: two renters would then
        // write into one block (one request's bytes in another's body).
        private int _rented = 1;

        public Memory<byte> Memory { get; } = array;

        public void Lease() => Volatile.Write(ref _rented, 1);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _rented, 0) == 1) pool.Return(this);
        }
    }
}
