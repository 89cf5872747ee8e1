using System.IO.Hashing;
using System.Runtime.InteropServices;
using DaprTrain.Training;

namespace DaprTrain.Engine.Nodes;

internal static class ReplicaState
{
    /// <summary>A hash of the weights' bytes: replicas that aggregated the same gradients have the same hash.</summary>
    public static ulong WeightHash(Trainer trainer) => XxHash3.HashToUInt64(MemoryMarshal.AsBytes((ReadOnlySpan<float>)trainer.Parameters.WeightSpan));

    /// <summary>The half-open range of the flat parameter vector that the k-th of n owners reduces in p2p-scatter.</summary>
    public static (int Offset, int Count) Slice(int parameterCount, int index, int owners)
    {
        long start = (long)parameterCount * index / owners;
        long end = (long)parameterCount * (index + 1) / owners;
        return ((int)start, (int)(end - start));
    }
}
