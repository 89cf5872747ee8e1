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
/// <see cref="IMemoryPoolFactory{T}"/>) and makes a pool of it for each I/O queue of each endpoint; they share one store
/// of free blocks, so what the service keeps between rentals is bounded for the whole service. What a connection reads
/// ahead stays bounded by Kestrel's <c>Limits.MaxRequestBufferSize</c> (1 MB) and may pass it by up to a block; an idle
/// connection holds no block (Kestrel waits for data before it rents one), a request being read holds at least one.
/// </summary>
public sealed class LargeBlockMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    private readonly FreeBlocks _free;

    public LargeBlockMemoryPoolFactory(int blockSize = LargeBlockMemoryPool.DefaultBlockSize, int retainedBlocks = LargeBlockMemoryPool.DefaultRetainedBlocks)
    {
        _free = new FreeBlocks(blockSize, retainedBlocks);
    }

    /// <summary>The size of every block of the pools this factory makes.</summary>
    public int BlockSize => _free.BlockSize;

    /// <summary>Blocks rented from this factory's pools so far (what Kestrel read into), for tests and diagnostics.</summary>
    public long Rented => _free.Rented;

    /// <summary>Blocks kept for reuse now, by all of this factory's pools together.</summary>
    public int Retained => _free.Count;

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool(_free);
}

/// <summary>
/// Pinned blocks of one size, reused: at most <c>retainedBlocks</c> are kept between rentals (the rest go to the GC), so an
/// idle service holds at most that many blocks whatever a burst of connections once made it rent. Each rental is an owner
/// of its own: disposing it twice, or late, returns its block once and never a block another rental holds.
/// </summary>
public sealed class LargeBlockMemoryPool : MemoryPool<byte>
{
    /// <summary>64 KB: a loopback or pod-network socket usually holds more than that while a large body arrives.</summary>
    public const int DefaultBlockSize = 64 * 1024;

    /// <summary>The smallest block: Kestrel asks for at least 4 KB (its own block size) and writes HTTP/2 frame headers and response headers into one block.</summary>
    public const int MinBlockSize = 4096;

    /// <summary>The largest block taken: 1 MB.</summary>
    public const int MaxBlockSize = 1024 * 1024;

    /// <summary>64 blocks of 64 KB: 4 MB kept at most.</summary>
    public const int DefaultRetainedBlocks = 64;

    private readonly FreeBlocks _free;
    private volatile bool _disposed;

    public LargeBlockMemoryPool(int blockSize = DefaultBlockSize, int retainedBlocks = DefaultRetainedBlocks)
        : this(new FreeBlocks(blockSize, retainedBlocks))
    {
    }

    internal LargeBlockMemoryPool(FreeBlocks free)
    {
        _free = free;
    }

    public override int MaxBufferSize => _free.BlockSize;

    /// <summary>Blocks kept for reuse now (by every pool sharing this pool's store).</summary>
    public int Retained => _free.Count;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (minBufferSize > _free.BlockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize, $"a block of this pool holds {_free.BlockSize} bytes");
        }
        return new Rental(_free, _free.Take());
    }

    // The blocks of a disposed pool go on serving the other pools of its factory; an owner disposed after it still returns its block.
    protected override void Dispose(bool disposing) => _disposed = true;

    private sealed class Rental(FreeBlocks free, byte[] block) : IMemoryOwner<byte>
    {
        private byte[]? _block = block;

        public Memory<byte> Memory => _block ?? throw new ObjectDisposedException(nameof(LargeBlockMemoryPool), "a rented block used after it was given back");

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _block, null) is { } returned) free.Return(returned);
        }
    }
}

/// <summary>The free blocks that one service's pools share.</summary>
internal sealed class FreeBlocks
{
    private readonly ConcurrentQueue<byte[]> _queue = new();
    private readonly int _retained;
    private int _count;
    private long _rented;

    public FreeBlocks(int blockSize, int retained)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, LargeBlockMemoryPool.MinBlockSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(blockSize, LargeBlockMemoryPool.MaxBlockSize);
        ArgumentOutOfRangeException.ThrowIfNegative(retained);
        BlockSize = blockSize;
        _retained = retained;
    }

    public int BlockSize { get; }

    public int Count => Volatile.Read(ref _count);

    public long Rented => Interlocked.Read(ref _rented);

    public byte[] Take()
    {
        Interlocked.Increment(ref _rented);
        if (_queue.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _count);
            return block;
        }
        // Uninitialised: every reader of a block reads only what was written into it. Pinned: sockets pin what they read into.
        return GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);
    }

    public void Return(byte[] block)
    {
        if (Interlocked.Increment(ref _count) > _retained)
        {
            Interlocked.Decrement(ref _count);
            return;
        }
        _queue.Enqueue(block);
    }
}
