using System.Buffers;
using System.Runtime.InteropServices;

namespace DaprTrain.Engine.Messaging;

/// <summary>
/// The float32 payload of a received message as <see cref="Memory{T}"/>, without copying it out of the
/// message bytes: decoding a 400 kB gradient then costs its checksum and its finiteness scan, not a new
/// large-object-heap array per delivery. The bytes are never written after they arrive.
/// </summary>
internal sealed class FloatView(byte[] bytes, int offset, int count) : MemoryManager<float>
{
    private GCHandle _pin;

    public override Span<float> GetSpan() => MemoryMarshal.Cast<byte, float>(bytes.AsSpan(offset, count * sizeof(float)));

    public override unsafe MemoryHandle Pin(int elementIndex = 0)
    {
        if (!_pin.IsAllocated) _pin = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        byte* start = (byte*)_pin.AddrOfPinnedObject() + offset + elementIndex * sizeof(float);
        return new MemoryHandle(start, default, this);
    }

    public override void Unpin()
    {
        if (_pin.IsAllocated) _pin.Free();
    }

    protected override void Dispose(bool disposing) => Unpin();
}
